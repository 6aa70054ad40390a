"""OTLP/HTTP logs (`POST /otlp/v1/logs`), protobuf and JSON encodings, as OpenTelemetry SDKs
and the Collector's `otlphttp` exporter send them. Resource attributes are the stream's labels
(`service.name` -> service, `host.name` -> host); log-record attributes are structured
metadata; the severity number gives the level."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from fastapi import APIRouter, Request
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from starlette.responses import Response

from shopkeeper.core.errors import DomainError
from shopkeeper.logs.auth import WriteTenant
from shopkeeper.logs.ingest.body import read_body
from shopkeeper.logs.ingest.errors import BadPayload
from shopkeeper.logs.ingest.protocol import protocol_responses, protocol_route
from shopkeeper.logs.records import (
    UNKNOWN_SERVICE,
    LogRecord,
    normalize_level,
    otel_severity_level,
)
from shopkeeper.logs.runtime import Logs
from shopkeeper.logs.store import records_batch

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# google.rpc.Status codes an OTLP client reads in an error body.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8, 503: 14}


def _is_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == JSON


def _render_error(request: Request, exc: DomainError) -> Response:
    """A google.rpc.Status in the request's encoding, as the OTLP/HTTP spec asks."""
    code = _RPC_CODES.get(exc.status, 2)
    if _is_json(request):
        body, media_type = orjson.dumps({"code": code, "message": exc.detail}), JSON
    else:
        body, media_type = _status_protobuf(code, exc.detail), PROTOBUF
    return Response(body, exc.status, headers=exc.headers or None, media_type=media_type)


def _status_protobuf(code: int, message: str) -> bytes:
    # google.rpc.Status{int32 code = 1; string message = 2}, written by hand: two fields do not
    # justify a runtime dependency on googleapis-common-protos.
    text = message.encode()
    return b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


_RESPONSES = protocol_responses(
    "application/x-protobuf", "a google.rpc.Status, JSON for JSON requests"
)
router = APIRouter(route_class=protocol_route(_render_error), tags=["logs ingest"])


@router.post("/otlp/v1/logs", response_class=Response, responses=_RESPONSES)
async def otlp_logs(request: Request, tenant: WriteTenant, logs: Logs) -> Response:
    """Store an OTLP ExportLogsServiceRequest; answers an empty ExportLogsServiceResponse."""
    body = await read_body(request, logs.settings.logs_max_body_bytes)
    json_encoded = _is_json(request)
    export = decode_json(body) if json_encoded else decode_protobuf(body)
    records = list(records_from_export(export))
    if records:
        await logs.sink.write([records_batch(records, tenant=tenant, source="otlp")])
    if json_encoded:
        return Response(b"{}", media_type=JSON)
    return Response(ExportLogsServiceResponse().SerializeToString(), media_type=PROTOBUF)


def decode_protobuf(body: bytes) -> ExportLogsServiceRequest:
    try:
        export: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(body)
    except Exception as exc:  # protobuf's DecodeError
        raise BadPayload("the body is not an OTLP ExportLogsServiceRequest") from exc
    return export


def decode_json(body: bytes) -> ExportLogsServiceRequest:
    """OTLP's JSON mapping is protobuf's, except that trace and span ids are hex, not base64."""
    try:
        document = orjson.loads(body)
        for resource_logs in document.get("resourceLogs") or []:
            for scope_logs in resource_logs.get("scopeLogs") or []:
                for record in scope_logs.get("logRecords") or []:
                    for key in ("traceId", "spanId"):
                        if record.get(key):
                            record[key] = base64.b64encode(bytes.fromhex(record[key])).decode()
        export: ExportLogsServiceRequest = json_format.ParseDict(
            document, ExportLogsServiceRequest(), ignore_unknown_fields=True
        )
    except (orjson.JSONDecodeError, json_format.ParseError, ValueError, AttributeError) as exc:
        raise BadPayload(f"the body is not OTLP JSON: {str(exc)[:200]}") from exc
    return export


def records_from_export(export: ExportLogsServiceRequest) -> Iterator[LogRecord]:
    for resource_logs in export.resource_logs:
        resource = dict(_flatten(resource_logs.resource.attributes))
        service = resource.pop("service.name", "") or UNKNOWN_SERVICE
        host = resource.pop("host.name", "")
        label_keys = list(resource)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope.name
            for log_record in scope_logs.log_records:
                attributes = dict(resource)
                if scope:
                    attributes["otel.scope.name"] = scope
                attributes.update(_flatten(log_record.attributes))
                number = log_record.severity_number
                yield LogRecord(
                    message=_text(log_record.body),
                    timestamp_ns=log_record.time_unix_nano or log_record.observed_time_unix_nano,
                    service=service,
                    host=host,
                    level=otel_severity_level(number)
                    if number
                    else normalize_level(log_record.severity_text or None),
                    trace_id=log_record.trace_id.hex(),
                    span_id=log_record.span_id.hex(),
                    attributes=attributes,
                    label_keys=label_keys,
                )


def _flatten(attributes: Iterable[KeyValue], prefix: str = "") -> Iterator[tuple[str, str]]:
    for pair in attributes:
        name = prefix + pair.key
        if pair.value.WhichOneof("value") == "kvlist_value":
            yield from _flatten(pair.value.kvlist_value.values, name + ".")
        else:
            yield name, _text(pair.value)


def _text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind is None:
        return ""
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind in ("int_value", "double_value"):
        return str(getattr(value, kind))
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return orjson.dumps(_plain(value)).decode()


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _plain(pair.value) for pair in value.kvlist_value.values}
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return None
    return getattr(value, kind) if kind != "bytes_value" else _text(value)
