"""Loki push: `POST /loki/api/v1/push`, JSON or protobuf + snappy, as Promtail, Grafana Alloy,
Vector's and Fluent Bit's `loki` outputs and Loki client libraries send it. 204 when stored;
errors are plain text, as Loki answers them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import cramjam
import orjson
from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from shopkeeper.core.errors import DomainError
from shopkeeper.logs.auth import WriteTenant
from shopkeeper.logs.ingest.body import read_body
from shopkeeper.logs.ingest.errors import BadPayload, PayloadTooLarge
from shopkeeper.logs.ingest.loki_proto import PushRequest
from shopkeeper.logs.ingest.protocol import protocol_responses, protocol_route
from shopkeeper.logs.records import UNKNOWN_SERVICE, LogRecord, normalize_level
from shopkeeper.logs.runtime import Logs
from shopkeeper.logs.store import records_batch

SERVICE_LABELS = ("service_name", "service", "job", "app")
HOST_LABELS = ("host", "hostname", "instance")
LEVEL_LABELS = ("level", "detected_level", "severity", "lvl")  # as Loki detects levels
# Labels that are the record's own columns; the other service/host/level spellings (job,
# instance...) are also kept as labels, so `{job="api"}` still selects what was pushed so.
_COLUMN_LABELS = frozenset({"service", "host", "level"})
_TRACE_KEYS = ("trace_id", "traceID", "traceId")
_SPAN_KEYS = ("span_id", "spanID", "spanId")

_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def _render_error(_request: Request, exc: DomainError) -> Response:
    return PlainTextResponse(exc.detail, exc.status, headers=exc.headers or None)


_RESPONSES = protocol_responses("text/plain", "plain text, as Loki")
router = APIRouter(route_class=protocol_route(_render_error), tags=["logs ingest"])


@router.post("/loki/api/v1/push", status_code=204, response_class=Response, responses=_RESPONSES)
async def loki_push(request: Request, tenant: WriteTenant, logs: Logs) -> Response:
    """Store a Loki push request (JSON, or protobuf compressed with snappy); 204 once durable."""
    max_bytes = logs.settings.logs_max_body_bytes
    body = await read_body(request, max_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        records = list(records_from_json(body))
    else:
        records = list(records_from_protobuf(_unsnappy(body, max_bytes)))
    if records:
        await logs.sink.write([records_batch(records, tenant=tenant, source="loki")])
    return Response(status_code=204)


def _unsnappy(body: bytes, max_bytes: int) -> bytes:
    try:
        if cramjam.snappy.decompress_raw_len(body) > max_bytes:
            raise PayloadTooLarge(f"Bodies are limited to {max_bytes} bytes decompressed")
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise BadPayload("the body is not snappy-compressed protobuf") from exc


def parse_labels(text: str) -> dict[str, str]:
    """A Prometheus label set as Loki writes it: `{job="api", env="prod"}`."""
    inner = text.strip()
    if not (inner.startswith("{") and inner.endswith("}")):
        raise BadPayload(f'labels must look like {{name="value"}}: {text[:200]!r}')
    inner = inner[1:-1].strip()
    labels: dict[str, str] = {}
    position = 0
    while position < len(inner):
        match = _LABEL.match(inner, position)
        if match is None:
            raise BadPayload(f"cannot parse labels: {text[:200]!r}")
        labels[match.group(1)] = _ESCAPE.sub(
            lambda m: _ESCAPES.get(m.group(1), m.group(1)), match.group(2)
        )
        position = match.end()
    return labels


class _Stream:
    """What a stream's labels give every entry of it."""

    def __init__(self, labels: Mapping[str, str]) -> None:
        self.service = _first(labels, SERVICE_LABELS) or UNKNOWN_SERVICE
        self.host = _first(labels, HOST_LABELS)
        self.level = _first(labels, LEVEL_LABELS)
        self.attributes = {k: v for k, v in labels.items() if k not in _COLUMN_LABELS}
        self.label_keys = list(self.attributes)

    def record(self, timestamp_ns: int, line: str, metadata: Mapping[str, str]) -> LogRecord:
        attributes = dict(self.attributes)
        trace_id = span_id = ""
        level = self.level
        for name, value in metadata.items():
            if name in _TRACE_KEYS:
                trace_id = value
            elif name in _SPAN_KEYS:
                span_id = value
            elif name in LEVEL_LABELS and not level:
                level = value
            else:
                attributes[name] = value
        return LogRecord(
            message=line,
            timestamp_ns=timestamp_ns,
            service=self.service,
            host=self.host,
            level=normalize_level(level or None),
            trace_id=trace_id,
            span_id=span_id,
            attributes=attributes,
            label_keys=self.label_keys,
        )


def _first(labels: Mapping[str, str], names: Iterable[str]) -> str:
    return next((labels[name] for name in names if labels.get(name)), "")


def records_from_protobuf(body: bytes) -> Iterable[LogRecord]:
    try:
        request = PushRequest.FromString(body)
    except Exception as exc:  # protobuf's DecodeError
        raise BadPayload("the body is not a Loki PushRequest") from exc
    for stream_message in request.streams:
        stream = _Stream(parse_labels(stream_message.labels))
        for entry in stream_message.entries:
            timestamp = entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos
            metadata = {pair.name: pair.value for pair in entry.structuredMetadata}
            yield stream.record(timestamp, entry.line, metadata)


def records_from_json(body: bytes) -> Iterable[LogRecord]:
    """Loki's JSON push (`stream` + `values`), and the pre-0.4 shape (`labels` + `entries`)
    that some clients still send."""
    try:
        document = orjson.loads(body)
        streams = document["streams"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadPayload("the body is not a Loki push request") from exc
    for item in streams:
        if not isinstance(item, dict):
            raise BadPayload("each stream must be an object")
        if "stream" in item or "values" in item:
            stream = _Stream(_string_map(item.get("stream") or {}))
            for value in item.get("values") or []:
                yield stream.record(_ns(value[0]), str(value[1]), _metadata(value))
        else:
            stream = _Stream(parse_labels(item.get("labels", "{}")))
            for entry in item.get("entries") or []:
                yield stream.record(
                    _ns(entry.get("ts") or entry.get("timestamp")), entry["line"], {}
                )


def _metadata(value: list[Any]) -> dict[str, str]:
    return _string_map(value[2]) if len(value) > 2 and isinstance(value[2], dict) else {}


def _string_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise BadPayload("labels and structured metadata must be objects")
    return {str(k): v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in value.items()}


def _ns(value: Any) -> int:
    """Loki's nanosecond epoch string; RFC 3339 in the old shape."""
    try:
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            return int(value)
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, TypeError) as exc:
        raise BadPayload(f"bad timestamp {value!r}") from exc
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000
