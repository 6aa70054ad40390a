"""NDJSON: one JSON object per line, parsed by ClickHouse (see store.transform)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from shopkeeper.core.errors import problem_responses
from shopkeeper.logs.auth import WriteTenant
from shopkeeper.logs.ingest.body import count_lines, read_body
from shopkeeper.logs.runtime import Logs
from shopkeeper.logs.store import Batch

router = APIRouter(tags=["logs ingest"])


class Accepted(BaseModel):
    accepted: int


@router.post(
    "/ingest",
    response_model=Accepted,
    responses=problem_responses(400, 401, 403, 413, 415, 429, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
async def ingest_ndjson(request: Request, tenant: WriteTenant, logs: Logs) -> Accepted:
    """Store newline-delimited JSON lines (optionally gzip-encoded); 200 once they are durable."""
    body = await read_body(request, logs.settings.logs_max_body_bytes)
    lines = count_lines(body)
    batch = Batch(tenant=tenant, source="ndjson", format="json_lines", payload=body, lines=lines)
    await logs.sink.write([batch])
    return Accepted(accepted=lines)
