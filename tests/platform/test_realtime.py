"""Realtime hub: fan-out across server processes through Redis, token checks, slow clients."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, cast

import httpx
import pytest
import structlog
import structlog.testing
from starlette.websockets import WebSocket, WebSocketState
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import shopkeeper.core.realtime as realtime_module
from shopkeeper.core.events import record_event
from shopkeeper.core.realtime import CLOSE_TOO_SLOW, RealtimeHub
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.inventory.events import StockLow
from tests.conftest import create_staff
from tests.platform.conftest import background_settings, postgres_only


def _ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://") + path


async def test_one_server_publishes_to_a_client_of_another_that_requires_a_token(
    backend: str,
    runtime: Runtime,
    client: httpx.AsyncClient,
    settings_factory: Callable[..., Settings],
    server_factory: Callable[..., Awaitable[str]],
    redis_url: str,
) -> None:
    postgres_only(backend)
    channel_prefix = f"shopkeeper-test-{secrets.token_hex(4)}"
    # Only the first server runs event handlers, so whatever the client receives from the
    # second one crossed processes through Redis.
    publisher = background_settings(
        settings_factory,
        redis_url=redis_url,
        redis_channel_prefix=channel_prefix,
        run_background_in_process=True,
    )
    listener = background_settings(
        settings_factory, redis_url=redis_url, redis_channel_prefix=channel_prefix
    )
    await server_factory(publisher)
    listener_url = await server_factory(listener)
    token = (await create_staff(runtime, client))["Authorization"].removeprefix("Bearer ")

    async with connect(_ws_url(listener_url, f"/api/v1/ws/admin?token={token}")) as socket:
        async with runtime.db.session() as session:
            record_event(session, StockLow(sku="MUG-RED", available=2))
            await session.commit()

        message = json.loads(await asyncio.wait_for(socket.recv(), timeout=20))

    assert message["type"] == "stock.low"
    assert message["sku"] == "MUG-RED"
    assert message["available"] == 2

    for query in ("", "?token=not-a-jwt"):
        async with connect(_ws_url(listener_url, f"/api/v1/ws/admin{query}")) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4401


class UnreadingClient:
    """A WebSocket peer that never reads: its sends block, like a full TCP window."""

    def __init__(self) -> None:
        self.application_state = WebSocketState.CONNECTING
        self.closed_with: int | None = None
        self.sent: list[dict[str, Any]] = []
        self.stalled = asyncio.Event()

    async def accept(self) -> None:
        self.application_state = WebSocketState.CONNECTED

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))
        await self.stalled.wait()

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code
        self.application_state = WebSocketState.DISCONNECTED


async def test_a_client_that_does_not_read_is_dropped_not_buffered(
    settings_factory: Callable[..., Settings],
) -> None:
    hub = RealtimeHub(settings_factory(realtime_client_queue_size=3))
    peer = UnreadingClient()
    serving = asyncio.create_task(hub.serve(cast(WebSocket, peer), ["orders"]))
    while hub.subscriber_count("orders") == 0:
        await asyncio.sleep(0)

    for number in range(10):
        await hub.publish("orders", {"type": "order.created", "number": number})

    await asyncio.wait_for(serving, timeout=5)
    assert peer.closed_with == CLOSE_TOO_SLOW
    assert hub.subscriber_count("orders") == 0


async def test_an_idle_client_receives_heartbeats(
    settings_factory: Callable[..., Settings],
) -> None:
    hub = RealtimeHub(settings_factory(realtime_heartbeat_seconds=0.01))
    peer = UnreadingClient()
    serving = asyncio.create_task(hub.serve(cast(WebSocket, peer), ["orders"]))
    while not peer.sent:
        await asyncio.sleep(0.01)
    serving.cancel()
    await asyncio.gather(serving, return_exceptions=True)
    assert peer.sent[0]["type"] == "heartbeat"


async def test_publishing_with_redis_down_drops_the_message_and_carries_on(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = structlog.testing.CapturingLogger()
    monkeypatch.setattr(realtime_module, "log", structlog.wrap_logger(logged, processors=[]))
    hub = RealtimeHub(settings_factory(redis_url="redis://127.0.0.1:1/0"))
    try:
        # Returns promptly instead of raising into the handler that published.
        await asyncio.wait_for(hub.publish("orders", {"type": "order.created"}), timeout=10)
    finally:
        await hub.stop()
    failures = [call for call in logged.calls if call.method_name == "warning"]
    assert [call.kwargs["event"] for call in failures] == ["realtime_publish_failed"]
    assert failures[0].kwargs["topic"] == "orders"
