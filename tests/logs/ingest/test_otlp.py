"""OTLP/HTTP logs: the OpenTelemetry SDK's exporter against a live server, and OTLP JSON."""

from __future__ import annotations

import time

import httpx
import orjson
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from shopkeeper.logs.store import LogStore
from tests.logs.conftest import LiveIngest, stored_rows

PATH = "/api/v1/logs/otlp/v1/logs"
TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
SPAN_ID = 0xEEE19B7EC3C1B174


async def test_the_sdk_exporter_ships_records_with_resource_labels_and_trace_ids(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str
) -> None:
    provider = LoggerProvider(
        resource=Resource.create(
            {"service.name": "checkout", "host.name": "node-1", "deployment.environment": "test"}
        )
    )
    exporter = OTLPLogExporter(
        endpoint=live_ingest.url + PATH,
        compression=Compression.Gzip,
        headers={"Authorization": f"Bearer {live_ingest.key}"},
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("shop.payments")
    span = NonRecordingSpan(
        SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    )
    at = time.time_ns()
    logger.emit(
        timestamp=at,
        severity_number=SeverityNumber.WARN,
        body="card declined",
        attributes={"order.id": "o-42", "amount": 1999},
        context=trace.set_span_in_context(span),
    )
    logger.emit(timestamp=at + 1, severity_number=SeverityNumber.ERROR2, body="gave up")
    provider.shutdown()
    rows = await stored_rows(log_store, tenant)
    assert [row["message"] for row in rows] == ["card declined", "gave up"]
    first = rows[0]
    assert (first["service"], first["host"], first["level"], first["source"]) == (
        "checkout",
        "node-1",
        "warn",
        "otlp",
    )
    assert first["ns"] == at
    assert first["trace_id"] == f"{TRACE_ID:032x}"
    assert first["span_id"] == f"{SPAN_ID:016x}"
    assert first["attributes"]["order.id"] == "o-42"
    assert first["attributes"]["amount"] == "1999"
    assert first["attributes"]["deployment.environment"] == "test"
    assert first["attributes"]["otel.scope.name"] == "shop.payments"
    assert "deployment.environment" in first["label_keys"]
    assert "order.id" not in first["label_keys"]
    assert rows[1]["level"] == "error"


async def test_otlp_json_with_hex_ids_and_structured_bodies(
    ingest_client: httpx.AsyncClient, log_store: LogStore, tenant: str
) -> None:
    at = time.time_ns()
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]
                },
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(at),
                                "severityText": "Information",
                                "body": {
                                    "kvlistValue": {
                                        "values": [{"key": "k", "value": {"intValue": "3"}}]
                                    }
                                },
                                "traceId": f"{TRACE_ID:032x}",
                                "spanId": f"{SPAN_ID:016x}",
                                "attributes": [
                                    {
                                        "key": "http",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "status", "value": {"intValue": 500}}
                                                ]
                                            }
                                        },
                                    }
                                ],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    response = await ingest_client.post(
        PATH, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    (row,) = await stored_rows(log_store, tenant)
    assert row["message"] == '{"k":3}'
    assert row["level"] == "info"
    assert row["ns"] == at
    assert row["trace_id"] == f"{TRACE_ID:032x}"
    assert row["attributes"] == {"http.status": "500"}
    assert row["label_keys"] == []


async def test_otlp_errors_are_rpc_status_in_the_request_encoding(
    ingest_client: httpx.AsyncClient,
) -> None:
    response = await ingest_client.post(
        PATH, content=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["code"] == 3
    response = await ingest_client.post(
        PATH, content=b"\xff\xff\xff", headers={"Content-Type": "application/x-protobuf"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/x-protobuf"
    assert response.content.startswith(b"\x08\x03\x12")
