"""Alerts on both databases: an app with the logs system on this run's database (chDB shared
with `log_store`), a real SMTP server, a local webhook receiver, and API keys per tenant."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from asgi_lifespan import LifespanManager

from shopkeeper.accounts.service import create_api_key
from shopkeeper.app import create_app
from shopkeeper.core.db import Database
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore
from tests.conftest import empty_tables, free_port
from tests.support.platform import SmtpSink

WEBHOOK_SECRET = "alerts-test-webhook-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A local HTTP server recording every POST; `status` is what it answers."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def bodies(self) -> list[Any]:
        with self.lock:
            return [item.json() for item in self.received]


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.status
            if status < 300:
                with receiver.lock:
                    receiver.received.append(Received(self.path, dict(self.headers), body))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def alerts_settings(
    settings_factory: Callable[..., Settings], logs_dir: Path, smtp_server: SmtpSink
) -> Settings:
    return settings_factory(
        logs_enabled=True,
        logs_dir=logs_dir,
        logs_ship_own_logs=False,
        logs_syslog_port=0,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        logs_alert_webhook_secret=WEBHOOK_SECRET,
    )


@pytest.fixture
async def alerts_runtime(
    alerts_settings: Settings, shared_database: Database, log_store: LogStore
) -> AsyncIterator[Runtime]:
    active = Runtime(
        settings=alerts_settings, db=shared_database, ratelimiter=RateLimiter(alerts_settings)
    )
    try:
        yield active
    finally:
        await empty_tables(shared_database)


@pytest.fixture
async def alerts_client(alerts_runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(runtime=alerts_runtime)
    async with (
        LifespanManager(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://test"
        ) as http,
    ):
        yield http


KeyFactory = Callable[..., Any]


@pytest.fixture
def key_headers(alerts_runtime: Runtime) -> KeyFactory:
    """`await key_headers(["logs:read"], tenant)` -> Authorization headers of a new API key."""

    async def make(scopes: list[str], tenant: str) -> dict[str, str]:
        async with alerts_runtime.db.session() as session:
            _, plaintext = await create_api_key(
                session, name=f"alerts-{tenant}", scopes=scopes, tenant=tenant
            )
        return {"Authorization": f"Bearer {plaintext}"}

    return make
