"""Loki's live tail over a WebSocket: the last lines since `start` from storage, then every new
line matching the query as the writer stores it (fed by the tail hub, not by polling), in
Loki's tail frames. A client that reads too slowly gets `dropped_entries` instead of lines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import Any

from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from shopkeeper.accounts.permissions import authenticate
from shopkeeper.core.errors import DomainError
from shopkeeper.core.jsonutil import dumps
from shopkeeper.core.security import Actor
from shopkeeper.logs.query import ast
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.params import now_ns, parse_limit, parse_timestamp
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.query.pipeline import Entry
from shopkeeper.logs.query.results import Stats
from shopkeeper.logs.query.streams import select_entries, streams_result
from shopkeeper.logs.runtime import LogsRuntime
from shopkeeper.logs.tail.session import TailFilter, TailSession

MAX_DELAY_SECONDS = 5
HOUR_NS = 3600 * 10**9
REMEMBERED_LINES = 10_000
FRAME_INTERVAL_SECONDS = 0.1
"""At most one frame per session this often: in a flood, a frame per stored batch per session
(each naming its dropped lines) cost the server and the client more than ingest itself."""


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
    await websocket.accept()
    try:
        await _tail(websocket, logs, actor.tenant, expr, start, limit, delay)
    except WebSocketDisconnect:
        return
    finally:
        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.close()


async def _tail(
    websocket: WebSocket,
    logs: LogsRuntime,
    tenant: str,
    query: ast.LogQuery,
    start: int,
    limit: int,
    delay: int,
) -> None:
    session = TailSession(tenant=tenant, filter=TailFilter.compile(query))
    # Subscribed before the history is read: a line stored meanwhile comes by both ways and is
    # sent once; none falls between them.
    await logs.tail.subscribe(session)
    receiving = asyncio.create_task(websocket.receive())  # notices a client that leaves
    try:
        history = await select_entries(
            logs.store,
            tenant=tenant,
            query=query,
            start=start,
            end=now_ns(),
            limit=limit,
            backward=True,
            stats=Stats(),
        )
        sent = _Sent(REMEMBERED_LINES)
        last_frame = 0.0
        await _send(websocket, sorted(history, key=lambda e: e.ts), [], sent)
        while not receiving.done():
            ready = asyncio.create_task(session.wait())
            await asyncio.wait({receiving, ready}, return_when=asyncio.FIRST_COMPLETED)
            ready.cancel()
            if receiving.done():
                break
            if delay:  # Loki's `delay_for`: let late lines of the same moment catch up
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(
                    max(0.0, last_frame + FRAME_INTERVAL_SECONDS - time.monotonic())
                )
            entries, dropped = session.take()
            last_frame = time.monotonic()
            await _send(websocket, entries, dropped, sent)
        message = receiving.result()
        if message.get("type") == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
    finally:
        receiving.cancel()
        logs.tail.unsubscribe(session)


class _Sent:
    """The lines sent lately, so that the history and the first live lines do not repeat one."""

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


async def _send(
    websocket: WebSocket, entries: list[Entry], dropped: list[dict[str, Any]], sent: _Sent
) -> None:
    fresh = [entry for entry in entries if sent.first_time(entry)]
    if fresh or dropped:
        frame = {
            "streams": streams_result(fresh, backward=False),
            "dropped_entries": dropped or None,
        }
        await websocket.send_text(dumps(frame).decode())
