"""Elasticsearch `_bulk`, so that official Elasticsearch clients, Filebeat, Fluent Bit and
Vector's `elasticsearch` sink write to us unchanged: Elasticsearch's answer shapes, its error
objects and the `X-Elastic-Product` header its clients check.

Documents are not parsed here: their lines go to ClickHouse as JSON lines (the NDJSON rules
plus ECS names), one batch per index, the index name becoming attribute `index`."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from shopkeeper.core.errors import DomainError
from shopkeeper.logs.auth import WriteTenant
from shopkeeper.logs.ingest.body import read_body
from shopkeeper.logs.ingest.errors import BadPayload, IngestOverloaded, StorageUnavailable
from shopkeeper.logs.ingest.protocol import protocol_responses, protocol_route
from shopkeeper.logs.runtime import Logs
from shopkeeper.logs.store import Batch

PRODUCT_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
# What GET / reports: an 8.x server, the version Beats, Logstash and Vector's sink all accept
# and speak the typeless bulk API with.
VERSION = "8.17.0"
_CLUSTER_UUID = uuid.uuid5(uuid.NAMESPACE_URL, "shopkeeper-logs").hex[:22]
_WRITE_ACTIONS = frozenset({"index", "create"})
_ERROR_TYPES = {
    400: "parse_exception",
    401: "security_exception",
    403: "security_exception",
    413: "content_too_long_exception",
    415: "media_type_header_exception",
    429: "es_rejected_execution_exception",
    503: "unavailable_shards_exception",
}


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status,
        headers={**PRODUCT_HEADERS, **(headers or {})},
        media_type="application/json",
    )


def _render_error(_request: Request, exc: DomainError) -> Response:
    kind = _ERROR_TYPES.get(exc.status, "exception")
    cause = {"type": kind, "reason": exc.detail}
    return _json(
        {"error": {"root_cause": [cause], **cause}, "status": exc.status},
        exc.status,
        exc.headers,
    )


_RESPONSES = protocol_responses("application/json", "an Elasticsearch error object")
router = APIRouter(prefix="/es", route_class=protocol_route(_render_error), tags=["logs ingest"])


@router.get("/", response_class=Response, responses=_RESPONSES, operation_id="es_info")
@router.head("/", response_class=Response, responses=_RESPONSES, operation_id="es_info_head")
async def info(tenant: WriteTenant) -> Response:
    """The cluster information document clients read at start-up."""
    return _json(
        {
            "name": "shopkeeper",
            "cluster_name": "shopkeeper-logs",
            "cluster_uuid": _CLUSTER_UUID,
            "version": {
                "number": VERSION,
                "build_flavor": "default",
                "build_type": "docker",
                "build_hash": "shopkeeper",
                "build_date": "2025-01-01T00:00:00.000Z",
                "build_snapshot": False,
                "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        }
    )


@router.get("/_cluster/health", response_class=Response, responses=_RESPONSES)
async def cluster_health(tenant: WriteTenant) -> Response:
    """What Vector's `elasticsearch` sink checks at start-up (its healthcheck)."""
    return _json(
        {
            "cluster_name": "shopkeeper-logs",
            "status": "green",
            "timed_out": False,
            "number_of_nodes": 1,
            "number_of_data_nodes": 1,
            "active_primary_shards": 1,
            "active_shards": 1,
            "relocating_shards": 0,
            "initializing_shards": 0,
            "unassigned_shards": 0,
        }
    )


@router.get("/_license", response_class=Response, responses=_RESPONSES)
async def license_info(tenant: WriteTenant) -> Response:
    """Beats and Logstash read the license before they send anything."""
    return _json(
        {
            "license": {
                "status": "active",
                "uid": _CLUSTER_UUID,
                "type": "basic",
                "issue_date_in_millis": 0,
                "max_nodes": 1000,
                "issued_to": "shopkeeper",
                "issuer": "shopkeeper",
            }
        }
    )


@router.post("/_bulk", response_class=Response, responses=_RESPONSES, operation_id="es_bulk")
@router.put("/_bulk", response_class=Response, responses=_RESPONSES, operation_id="es_bulk_put")
async def bulk(request: Request, tenant: WriteTenant, logs: Logs) -> Response:
    """Store the documents of `index` and `create` actions; answer per item as Elasticsearch."""
    return await _bulk(request, tenant, logs, None)


@router.post(
    "/{index}/_bulk", response_class=Response, responses=_RESPONSES, operation_id="es_index_bulk"
)
@router.put(
    "/{index}/_bulk",
    response_class=Response,
    responses=_RESPONSES,
    operation_id="es_index_bulk_put",
)
async def bulk_into_index(
    request: Request, index: str, tenant: WriteTenant, logs: Logs
) -> Response:
    """`_bulk` with a default index for actions that name none."""
    return await _bulk(request, tenant, logs, index)


async def _bulk(request: Request, tenant: str, logs: Logs, default_index: str | None) -> Response:
    started = time.perf_counter()
    body = await read_body(request, logs.settings.logs_max_body_bytes)
    documents: dict[str, list[bytes]] = {}
    items: list[dict[str, Any]] = []
    lines = [line for line in body.split(b"\n") if line.strip()]
    position = 0
    while position < len(lines):
        action, meta = _action(lines[position])
        position += 1
        index = str(meta.get("_index") or default_index or "")
        item: dict[str, Any] = {"_index": index, "_id": str(meta.get("_id") or _new_id())}
        if action == "delete":
            items.append({action: {**item, **_item_error(400, "delete is not supported")}})
            continue
        if position >= len(lines):
            raise BadPayload(f"the {action} action on line {position} has no document")
        source = lines[position]
        position += 1
        if action not in _WRITE_ACTIONS:
            items.append({action: {**item, **_item_error(400, f"{action} is not supported")}})
        elif not index:
            items.append({action: {**item, **_item_error(400, "no index given")}})
        else:
            documents.setdefault(index, []).append(source)
            items.append({action: item})
    batches = [
        Batch(
            tenant=tenant,
            source="elasticsearch",
            format="json_lines",
            payload=b"\n".join(sources) + b"\n",
            lines=len(sources),
            extra_attributes={"index": index},
        )
        for index, sources in documents.items()
    ]
    failed = await _store_by_index(logs, batches)
    errors = False
    for sequence, entry in enumerate(items):
        result = next(iter(entry.values()))
        if result["_index"] in failed and "error" not in result:
            result.update(failed[result["_index"]])
        if "error" in result:
            errors = True
            continue
        result.update(
            _version=1,
            result="created",
            _shards={"total": 1, "successful": 1, "failed": 0},
            _seq_no=sequence,
            _primary_term=1,
            status=201,
        )
    took = int((time.perf_counter() - started) * 1000)
    return _json({"took": took, "errors": errors, "items": items})


async def _store_by_index(logs: Logs, batches: list[Batch]) -> dict[str, dict[str, Any]]:
    """Store one batch per index, in order. If the first fails, nothing is stored and the
    request fails; if a later one does, the earlier indices' documents are stored and the
    failed ones are reported per item (429 or 503), as Elasticsearch reports a rejected shard,
    and clients retry just those items."""
    failed: dict[str, dict[str, Any]] = {}
    for position, batch in enumerate(batches):
        try:
            await logs.sink.write([batch])
        except (IngestOverloaded, StorageUnavailable) as exc:
            if position == 0:
                raise
            kind = _ERROR_TYPES.get(exc.status, "exception")
            failed[batch.extra_attributes["index"]] = {
                "status": exc.status,
                "error": {"type": kind, "reason": exc.detail},
            }
    return failed


def _action(line: bytes) -> tuple[str, dict[str, Any]]:
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadPayload(f"malformed action line: {line[:200]!r}") from exc
    if not isinstance(parsed, dict) or len(parsed) != 1:
        raise BadPayload(f"an action line holds one action: {line[:200]!r}")
    ((action, meta),) = parsed.items()
    if not isinstance(meta, dict):
        raise BadPayload(f"malformed action line: {line[:200]!r}")
    return str(action), meta


def _item_error(status: int, reason: str) -> dict[str, Any]:
    return {"status": status, "error": {"type": "illegal_argument_exception", "reason": reason}}


def _new_id() -> str:
    return uuid.uuid4().hex[:20]
