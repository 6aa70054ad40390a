"""Live tail across processes, as in production: a gateway (`shopkeeper serve` with the
RabbitMQ ingest buffer) takes lines over HTTP, a separate `shopkeeper logs writer` stores
them, and the writer's tail hub reaches the session open on the gateway through Redis."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from shopkeeper.core.db import Database
from shopkeeper.core.migrate import upgrade_database
from tests.conftest import ServerProcess, make_settings, require_service, settings_env
from tests.logs.buffer.conftest import AMQP_URL
from tests.logs.conftest import make_key


async def test_a_line_stored_by_the_writer_process_reaches_a_tail_on_the_gateway(
    tmp_path: Path,
    server_factory: Callable[..., Any],
    process_factory: Callable[..., ServerProcess],
    stream_name: str,
) -> None:
    require_service("Redis", "127.0.0.1", 6379)
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}",
        tmp_path,
        logs_enabled=True,
        logs_dir=tmp_path / "gateway-chdb",
        logs_ship_own_logs=False,
        logs_syslog_port=0,
        logs_buffer_url=AMQP_URL,
        logs_buffer_stream=stream_name,
        redis_url="redis://127.0.0.1:6379/0",
        redis_namespace=f"tail-{secrets.token_hex(4)}",
    )
    database = Database(settings)
    try:
        await upgrade_database(database)
    finally:
        await database.dispose()
    tenant = f"t_{secrets.token_hex(4)}"
    read_key = await make_key(settings, scopes=["logs:read"], tenant=tenant)
    write_key = await make_key(settings, scopes=["logs:write"], tenant=tenant)
    gateway = await server_factory(settings)
    process_factory(
        ["logs", "writer"],
        settings_env(settings, SHOPKEEPER_LOGS_DIR=str(tmp_path / "writer-chdb")),
    )

    params = urlencode(
        {"query": '{service="api"} |= "paid"', "start": str(time.time_ns()), "token": read_key}
    )
    url = gateway.replace("http://", "ws://") + f"/api/v1/logs/loki/api/v1/tail?{params}"
    async with websockets.connect(url) as socket, httpx.AsyncClient(base_url=gateway) as http:
        lines = [
            {"service": "api", "message": "order 1 paid"},
            {"service": "api", "message": "order 2 cancelled"},
            {"service": "web", "message": "order 3 paid"},
            {"service": "api", "message": "order 4 paid"},
        ]
        answer = await http.post(
            "/api/v1/logs/ingest",
            content="".join(json.dumps(line) + "\n" for line in lines),
            headers={
                "Authorization": f"Bearer {write_key}",
                "Content-Type": "application/x-ndjson",
            },
        )
        assert answer.status_code == 200, answer.text
        received: list[str] = []
        while len(received) < 2:
            # The writer process starts up (and opens its store) while we wait.
            frame = json.loads(await asyncio.wait_for(socket.recv(), timeout=90))
            received += [value[1] for stream in frame["streams"] for value in stream["values"]]
        assert received == ["order 1 paid", "order 4 paid"]
