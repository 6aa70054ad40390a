"""The syslog receiver as `serve` runs it: started by the app's lifespan inside uvicorn (whose
loop is uvloop when installed), on the port the settings name."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import socket

from shopkeeper.app import create_app
from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore
from tests.conftest import free_port
from tests.logs.conftest import LiveServer, stored_rows
from tests.logs.syslog.conftest import wait_for_lines


async def test_serve_receives_syslog_over_udp_and_tcp(
    logs_settings: Settings, log_store: LogStore, tenant: str
) -> None:
    port = free_port()
    settings = logs_settings.model_copy(
        update={"logs_syslog_port": port, "logs_syslog_tenant": tenant}
    )
    server = LiveServer(create_app(settings), free_port())
    await asyncio.to_thread(server.start)
    try:

        def send() -> None:
            for socktype, text in (
                (socket.SOCK_DGRAM, "over udp"),
                (socket.SOCK_STREAM, "over tcp"),
            ):
                handler = logging.handlers.SysLogHandler(("127.0.0.1", port), socktype=socktype)
                handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
                handler.emit(logging.makeLogRecord({"name": "served", "msg": text, "levelno": 40}))
                handler.close()

        await asyncio.to_thread(send)
        await wait_for_lines(log_store, tenant, 2)
    finally:
        await asyncio.to_thread(server.stop)
    rows = await stored_rows(log_store, tenant)
    assert sorted((row["message"], row["service"], row["source"]) for row in rows) == [
        ("over tcp", "served", "syslog"),
        ("over udp", "served", "syslog"),
    ]
