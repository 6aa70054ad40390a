"""Python's own `logging.handlers.SysLogHandler`, over UDP and TCP, into the receiver; lines
read back through the Loki API."""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import os
import socket
import time

import httpx
import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.ingest.syslog_server import SyslogServers
from shopkeeper.logs.store import LogStore
from tests.logs.syslog.conftest import loki_streams, wait_for_lines

LEVELS = [
    (logging.DEBUG, "debug"),
    (logging.INFO, "info"),
    (logging.WARNING, "warn"),
    (logging.ERROR, "error"),
    (logging.CRITICAL, "fatal"),
]


@pytest.mark.parametrize("socktype", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"])
async def test_sysloghandler_lines_arrive_with_service_host_level_and_time(
    syslog: SyslogServers,
    log_store: LogStore,
    logs_client: httpx.AsyncClient,
    logs_settings: Settings,
    tenant: str,
    socktype: socket.SocketKind,
) -> None:
    since = time.time_ns()
    handler = logging.handlers.SysLogHandler(
        address=("127.0.0.1", syslog.port),
        facility=logging.handlers.SysLogHandler.LOG_LOCAL3,
        socktype=socktype,
    )
    handler.setFormatter(logging.Formatter("%(name)s[%(process)d]: %(message)s"))
    logger = logging.getLogger(f"billing-{tenant}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        # The handler's socket calls block; they run beside the loop serving the receiver.
        def send() -> None:
            for number in range(20):
                for level, _ in LEVELS:
                    logger.log(level, "charge %d at level %d ünïcode", number, level)

        await asyncio.to_thread(send)
    finally:
        logger.removeHandler(handler)
        handler.close()
    sent_until = time.time_ns()
    await wait_for_lines(log_store, tenant, 100)

    streams = await loki_streams(
        logs_client, logs_settings, tenant, f'{{service="billing-{tenant}"}}', since
    )
    by_level = {stream["stream"]["level"]: stream for stream in streams}
    assert sorted(by_level) == sorted(name for _, name in LEVELS)
    for level, name in LEVELS:
        stream = by_level[name]
        assert stream["stream"]["host"] == "127.0.0.1"
        assert stream["stream"]["source"] == "syslog"
        values = stream["values"]
        assert [value[1] for value in values] == [
            f"charge {number} at level {level} ünïcode" for number in range(20)
        ]
        # Python's handler sends no timestamp: the time of receipt it is.
        assert all(since <= int(value[0]) <= sent_until + 2_000_000_000 for value in values)
        metadata = values[0][2]["structuredMetadata"]
        assert metadata == {"facility": "local3", "pid": str(os.getpid())}
