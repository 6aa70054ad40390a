"""A WebSocket client that speaks ASGI straight to the app, in the test's event loop (so the
app shares the test's database engine and realtime hub)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message


class WebSocketClosed(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"closed with {code}")
        self.code = code


class ASGIWebSocket:
    def __init__(self, app: ASGIApp, url: str) -> None:
        parts = urlsplit(url)
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": parts.path,
            "raw_path": parts.path.encode(),
            "root_path": "",
            "query_string": parts.query.encode(),
            "headers": [(b"host", b"test")],
            "client": ("127.0.0.1", 50000),
            "server": ("test", 80),
            "subprotocols": [],
            "state": {},
        }
        self.app = app
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    async def __aenter__(self) -> ASGIWebSocket:
        self._task = asyncio.create_task(self._run())
        await self._to_app.put({"type": "websocket.connect"})
        first = await self._next()
        if first["type"] != "websocket.accept":
            raise AssertionError(f"handshake answered with {first}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._to_app.put({"type": "websocket.disconnect", "code": 1000})
        if self._task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._task, timeout=5)
            if not self._task.done():
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        await self.app(self.scope, self._to_app.get, self._from_app.put)

    async def _next(self, timeout: float = 5) -> Message:
        return await asyncio.wait_for(self._from_app.get(), timeout=timeout)

    async def receive_json(self, timeout: float = 5) -> dict[str, Any]:
        """The next application message (heartbeats skipped); WebSocketClosed on a close."""
        while True:
            message = await self._next(timeout)
            if message["type"] == "websocket.close":
                self.close_code = int(message.get("code", 1000))
                raise WebSocketClosed(self.close_code)
            data = orjson.loads(message.get("text") or message.get("bytes") or b"{}")
            if data.get("type") != "heartbeat":
                return dict(data)

    async def expect_close(self, timeout: float = 5) -> int:
        try:
            message = await self.receive_json(timeout)
        except WebSocketClosed as closed:
            return closed.code
        raise AssertionError(f"expected a close, got {message}")
