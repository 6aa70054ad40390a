"""WebSocket hub: per-topic subscriptions, heartbeats, bounded per-client queues, and fan-out
across server processes through Redis pub/sub when `SHOPKEEPER_REDIS_URL` is set.

Delivery is best-effort and live-only: a client sees what is published while it is connected.
Anything a client must not miss belongs in the database (and the outbox), not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from shopkeeper.core.db import utcnow
from shopkeeper.core.security import InvalidToken, Principal, decode_access_token
from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_SLOW = 4408
"""The client did not read fast enough and its queue filled up; it may reconnect."""


PRINCIPAL_TOPIC = "principal:"
"""`principal:<user id>`: the user's account or roles changed; their sockets re-authorise."""
REAUTHORIZE_EVERY_SECONDS = 60.0
"""Re-authorisation also runs this often, should a change notice be lost (Redis down)."""

Reauthorize = Callable[[], Awaitable[int | None]]
"""Asks again whether the socket's user may keep listening: None, or the close code (4401 the
account is gone, 4403 no longer allowed)."""


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[dict[str, Any]]
    topics: frozenset[str]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    close_code: int | None = None


class RealtimeHub:
    """The process's WebSocket clients by topic; `publish` reaches every process's clients."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._clients: dict[str, set[_Client]] = {}
        self._redis: Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._first_attempt = asyncio.Event()
        self.channel_prefix = realtime_channel_prefix(settings)

    @property
    def distributed(self) -> bool:
        return self.settings.redis_url is not None

    def _redis_client(self) -> Redis:
        if self._redis is None:
            assert self.settings.redis_url is not None
            self._redis = Redis.from_url(self.settings.redis_url)
        return self._redis

    async def start(self) -> None:
        """Listen to other processes' publications (only needed where clients connect)."""
        if not self.distributed or self._listener is not None:
            return
        self._listener = asyncio.create_task(self._listen(), name="realtime-redis-listener")
        # Subscribed before we serve, so a message published after a client connected reaches
        # it; if Redis is down we serve anyway (readiness says so) and the listener retries.
        await self._first_attempt.wait()

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def publish(self, topic: str, message: dict[str, Any]) -> None:
        """Send `message` to every client subscribed to `topic`, in any process. Best effort:
        with Redis down the message is dropped and logged, and the caller carries on (a handler
        that also changed the database must not roll back for a live notification)."""
        if not self.distributed:
            self._deliver(topic, message)
            return
        payload = orjson.dumps(message, default=str)
        try:
            await self._redis_client().publish(self.channel_prefix + topic, payload)
        except RedisError as exc:
            log.warning("realtime_publish_failed", topic=topic, error=str(exc))

    async def check_redis(self) -> None:
        await self._redis_client().ping()

    async def _listen(self) -> None:
        while True:
            pubsub = self._redis_client().pubsub()
            try:
                await pubsub.psubscribe(self.channel_prefix + "*")
                self._first_attempt.set()
                async for item in pubsub.listen():
                    if item.get("type") != "pmessage":
                        continue
                    channel = item["channel"].decode()
                    topic = channel.removeprefix(self.channel_prefix)
                    self._deliver(topic, orjson.loads(item["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: keep trying, the clients stay connected
                log.warning("realtime_redis_listener_failed", error=str(exc))
                self._first_attempt.set()
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    # redis-py leaves PubSub.aclose unannotated.
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def principal_changed(self, user_id: uuid.UUID) -> None:
        """Tell every process that `user_id`'s account or roles changed: their open sockets
        re-authorise at once and are closed (4401/4403) if no longer allowed. Call it after the
        change is committed (role changes, deactivation, deletion)."""
        await self.publish(f"{PRINCIPAL_TOPIC}{user_id}", {"type": "principal.changed"})

    def _deliver(self, topic: str, message: dict[str, Any]) -> None:
        if topic.startswith(PRINCIPAL_TOPIC):
            for client in tuple(self._clients.get(topic, ())):
                client.changed.set()
            return
        for client in tuple(self._clients.get(topic, ())):
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                # Never buffer without bound for a client that does not read: drop it instead.
                client.dropped.set()

    def subscriber_count(self, topic: str) -> int:
        return len(self._clients.get(topic, ()))

    async def serve(
        self,
        websocket: WebSocket,
        topics: list[str],
        *,
        user_id: uuid.UUID | None = None,
        expires_at: float | None = None,
        reauthorize: Reauthorize | None = None,
    ) -> None:
        """Accept `websocket`, forward messages of `topics` until it disconnects, heartbeat while
        idle, and close it with 4408 when it falls `realtime_client_queue_size` messages behind.

        With `user_id`, the socket is closed with 4401 when its token expires (`expires_at`, a
        Unix time) and re-authorised through `reauthorize` whenever `principal_changed(user_id)`
        is announced (and every `REAUTHORIZE_EVERY_SECONDS`)."""
        watched = [f"{PRINCIPAL_TOPIC}{user_id}"] if user_id is not None else []
        client = _Client(
            queue=asyncio.Queue(maxsize=self.settings.realtime_client_queue_size),
            topics=frozenset([*topics, *watched]),
        )
        for topic in client.topics:
            self._clients.setdefault(topic, set()).add(client)
        try:
            if websocket.application_state == WebSocketState.CONNECTING:
                await websocket.accept()
            watchers = []
            if user_id is not None:
                watchers.append(_watch_authorization(client, expires_at, reauthorize))
            await _run_until_first_done(
                self._forward(websocket, client), _wait_for_disconnect(websocket), *watchers
            )
        finally:
            for topic in client.topics:
                subscribers = self._clients.get(topic)
                if subscribers is not None:
                    subscribers.discard(client)
                    if not subscribers:
                        del self._clients[topic]
            if websocket.application_state == WebSocketState.CONNECTED:
                with contextlib.suppress(Exception):
                    code = CLOSE_TOO_SLOW if client.dropped.is_set() else 1000
                    code = client.close_code or code
                    await websocket.close(code=code)

    async def _forward(self, websocket: WebSocket, client: _Client) -> None:
        heartbeat = self.settings.realtime_heartbeat_seconds
        while not client.dropped.is_set():
            getter = asyncio.ensure_future(client.queue.get())
            dropped = asyncio.ensure_future(client.dropped.wait())
            done, pending = await asyncio.wait(
                {getter, dropped}, timeout=heartbeat, return_when=asyncio.FIRST_COMPLETED
            )
            for future in pending:
                future.cancel()
            if client.dropped.is_set():
                log.info("realtime_client_dropped", reason="slow", topics=sorted(client.topics))
                return
            if getter in done:
                await websocket.send_text(orjson.dumps(getter.result(), default=str).decode())
            else:
                await websocket.send_text(
                    orjson.dumps({"type": "heartbeat", "at": utcnow().isoformat()}).decode()
                )


def realtime_channel_prefix(settings: Settings) -> str:
    """`<namespace>:[<channel prefix>:]realtime:` — under the namespace like every Redis key, so
    shops sharing a Redis never see each other's messages."""
    extra = f"{settings.redis_channel_prefix}:" if settings.redis_channel_prefix else ""
    return f"{settings.redis_namespace}:{extra}realtime:"


async def _watch_authorization(
    client: _Client, expires_at: float | None, reauthorize: Reauthorize | None
) -> None:
    """Return (ending the socket) once its token expired or its user may no longer listen."""
    while True:
        wait = REAUTHORIZE_EVERY_SECONDS
        if expires_at is not None:
            wait = min(wait, max(0.0, expires_at - time.time()))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(client.changed.wait(), timeout=wait)
        client.changed.clear()
        if expires_at is not None and time.time() >= expires_at:
            client.close_code = CLOSE_UNAUTHORIZED
            return
        if reauthorize is not None and (code := await reauthorize()) is not None:
            client.close_code = code
            return


def token_expiry(websocket: WebSocket) -> float | None:
    """The `exp` of the socket's `?token=` (already verified by `authenticate_websocket`)."""
    token = websocket.query_params.get("token")
    if not token:
        return None
    claims = jwt.decode(token, options={"verify_signature": False})
    expiry = claims.get("exp")
    return float(expiry) if isinstance(expiry, int | float) else None


async def _wait_for_disconnect(websocket: WebSocket) -> None:
    # Clients have nothing to say on these channels; reading is how a disconnect is noticed.
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


async def _run_until_first_done(*coroutines: Awaitable[None]) -> None:
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            exception = task.exception()
            if exception is not None and not isinstance(exception, WebSocketDisconnect):
                log.warning("realtime_connection_failed", error=str(exception))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def authenticate_websocket(websocket: WebSocket, settings: Settings) -> Principal | None:
    """The principal of `?token=`; without a valid one the socket is closed with 4401 and None
    returned. The handshake is accepted first so that the client sees the close code."""
    token = websocket.query_params.get("token")
    if token:
        with contextlib.suppress(InvalidToken):
            return decode_access_token(token, settings)
    await close_websocket(websocket, CLOSE_UNAUTHORIZED, "a valid ?token= is required")
    return None


async def close_websocket(websocket: WebSocket, code: int, reason: str = "") -> None:
    """Close with an application code (4403 for a forbidden topic), accepting first if needed:
    a close before the handshake would reach the client as a bare HTTP 403."""
    if websocket.application_state == WebSocketState.CONNECTING:
        await websocket.accept()
    await websocket.close(code=code, reason=reason)
