"""Loki's live tail over a WebSocket: the last lines since `start`, then every new line
matching the query as it is stored, in Loki's tail frames."""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from shopkeeper.accounts.permissions import authenticate
from shopkeeper.core.errors import DomainError
from shopkeeper.core.jsonutil import dumps
from shopkeeper.core.security import Actor
from shopkeeper.logs.query import ast
from shopkeeper.logs.query.compiler import Params, compile_log_query, tail_rows_sql
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.params import now_ns, parse_limit, parse_timestamp
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.query.pipeline import Entry, compile_pipeline, entry_from_row
from shopkeeper.logs.query.results import Stats
from shopkeeper.logs.query.streams import select_entries, streams_result
from shopkeeper.logs.store import LogStore

POLL_SECONDS = 1.0
# Lines are read once they have been stored this long: an insert that began earlier is visible
# by then, so reading by time of storage misses none.
SETTLE_NS = 2 * 10**9
MAX_DELAY_SECONDS = 5
BATCH_LINES = 1000
HOUR_NS = 3600 * 10**9
YEAR_NS = 365 * 24 * HOUR_NS


async def websocket_actor(websocket: WebSocket) -> Actor | None:
    """The caller as for any request (Authorization header), or by `?token=` (browsers cannot
    set headers on a WebSocket)."""
    scope = dict(websocket.scope)
    token = websocket.query_params.get("token")
    if token and "authorization" not in websocket.headers:
        scope["headers"] = [*scope["headers"], (b"authorization", f"Bearer {token}".encode())]
    scope["type"] = "http"
    return await authenticate(Request(scope))


async def serve_tail(websocket: WebSocket) -> None:
    try:
        actor = await websocket_actor(websocket)
    except DomainError as exc:
        await websocket.close(code=1008, reason=exc.detail[:120])
        return
    if actor is None or not actor.can("logs:read"):
        reason = "credentials required" if actor is None else "this needs logs:read"
        await websocket.close(code=1008, reason=reason)
        return
    params = websocket.query_params
    try:
        expr = parse(params.get("query", ""))
        if not isinstance(expr, ast.LogQuery):
            raise QueryError("tail needs a log query, not a metric query")
        limit = parse_limit(params)
        delay = min(max(int(params.get("delay_for") or 0), 0), MAX_DELAY_SECONDS)
        start = parse_timestamp(params.get("start"), now_ns() - HOUR_NS)
    except (QueryError, ValueError) as exc:
        await websocket.close(code=1008, reason=str(exc)[:120])
        return
    logs = getattr(websocket.app.state, "logs", None)
    if logs is None:  # storage did not open in this process (see logs/runtime.py)
        await websocket.close(code=1011, reason="log storage unavailable")
        return
    store: LogStore = logs.store
    await websocket.accept()
    try:
        await _tail(websocket, store, actor.tenant, expr, start, limit, delay)
    except WebSocketDisconnect:
        return
    finally:
        if websocket.application_state != WebSocketState.DISCONNECTED:
            await websocket.close()


async def _tail(
    websocket: WebSocket,
    store: LogStore,
    tenant: str,
    query: ast.LogQuery,
    start: int,
    limit: int,
    delay: int,
) -> None:
    connected = now_ns()
    history = await select_entries(
        store,
        tenant=tenant,
        query=query,
        start=start,
        end=connected,
        limit=limit,
        backward=True,
        stats=Stats(),
    )
    sent = _Sent(10 * BATCH_LINES)
    await _send(websocket, sorted(history, key=lambda e: e.ts), sent)
    params = Params()
    compiled = compile_log_query(query, params)
    pipeline = compile_pipeline(compiled.residual)
    sql = tail_rows_sql(store.table, compiled)
    after = connected - SETTLE_NS - delay * 10**9
    receiving = asyncio.create_task(websocket.receive())  # notices a client that leaves
    try:
        while not receiving.done():
            until = now_ns() - SETTLE_NS - delay * 10**9
            rows = await store.query(
                sql,
                {
                    **params.values,
                    "tenant": tenant,
                    "start": start,
                    "end": until + YEAR_NS,
                    "after": after,
                    "until": until,
                    "limit": BATCH_LINES,
                },
            )
            if rows:
                after = int(rows[-1]["observed"])
            entries = [e for e in map(entry_from_row, rows) if pipeline.run(e)]
            await _send(websocket, entries, sent)
            if len(rows) < BATCH_LINES:
                await asyncio.wait({receiving}, timeout=POLL_SECONDS)
        message = receiving.result()
        if message.get("type") == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
    finally:
        receiving.cancel()


class _Sent:
    """The lines sent lately, so that the history and the first reads do not repeat one."""

    def __init__(self, size: int) -> None:
        self.order: deque[tuple[int, str]] = deque()
        self.keys: set[tuple[int, str]] = set()
        self.size = size

    def first_time(self, entry: Entry) -> bool:
        key = (entry.ts, entry.line)
        if key in self.keys:
            return False
        self.order.append(key)
        self.keys.add(key)
        if len(self.order) > self.size:
            self.keys.discard(self.order.popleft())
        return True


async def _send(websocket: WebSocket, entries: list[Entry], sent: _Sent) -> None:
    fresh = [entry for entry in entries if sent.first_time(entry)]
    if fresh:
        frame = {"streams": streams_result(fresh, backward=False), "dropped_entries": None}
        await websocket.send_text(dumps(frame).decode())
