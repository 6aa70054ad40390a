"""rsyslog (Debian's package) forwarding to the receiver over TCP: once in RFC 5424 with
octet-counted framing, once in its traditional forward format with newline framing."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.ingest.syslog_server import SyslogServers, start_syslog
from shopkeeper.logs.ingest.writer import GroupCommitWriter
from shopkeeper.logs.store import LogStore
from tests.conftest import IN_CI, free_port
from tests.logs.syslog.conftest import loki_streams, wait_for_lines

SEVERITIES = {0: "fatal", 2: "fatal", 3: "error", 4: "warn", 5: "info", 6: "info", 7: "debug"}


def rsyslogd() -> str | None:
    """The rsyslogd binary, installed from Debian's package when missing and we may."""
    found = shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None
    )
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "rsyslog"],
            env=environment,
            capture_output=True,
            check=False,
            timeout=600,
        )
        found = shutil.which("rsyslogd") or (
            "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None
        )
    return found


@pytest.fixture
def rsyslog_binary() -> str:
    binary = rsyslogd()
    if binary is None:
        message = "rsyslogd is not installed and apt-get could not install it"
        if IN_CI:
            pytest.fail(message + " (CI=true: tests that need it must run)")
        pytest.skip(message)
    return binary


@pytest.fixture
async def receivers(log_store: LogStore, tenant: str) -> AsyncIterator[list[SyslogServers]]:
    """Two receivers, one per rsyslog forwarding format, in two tenants."""
    writer = GroupCommitWriter(log_store, max_pending_lines=100_000, batch_lines=10_000)
    await writer.start()
    started = [
        await start_syslog(writer, port=0, tenant=f"{tenant}{suffix}", flush_seconds=0.05)
        for suffix in ("_5424", "_3164")
    ]
    try:
        yield started
    finally:
        for servers in started:
            await servers.stop()
        await writer.stop()


@pytest.fixture
def rsyslog(rsyslog_binary: str, receivers: list[SyslogServers], tmp_path: Path) -> Iterator[int]:
    """rsyslogd in the foreground with its own config, pid file and work directory: TCP in on
    a free port, two `omfwd` actions out to the receivers. Yields its input port."""
    port_in = free_port()
    work = tmp_path / "rsyslog"
    work.mkdir()
    config = work / "rsyslog.conf"
    config.write_text(
        f"""
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
input(type="imtcp" port="{port_in}" address="127.0.0.1" ruleset="forward")
ruleset(name="forward") {{
  action(type="omfwd" target="127.0.0.1" port="{receivers[0].port}" protocol="tcp"
         template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
  action(type="omfwd" target="127.0.0.1" port="{receivers[1].port}" protocol="tcp"
         template="RSYSLOG_ForwardFormat")
}}
"""
    )
    process = subprocess.Popen(
        [rsyslog_binary, "-n", "-f", str(config), "-i", str(work / "rsyslogd.pid")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port_in), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise RuntimeError(f"rsyslogd did not start: {output}") from None
                time.sleep(0.05)
        yield port_in
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_rsyslog_forwarding_keeps_service_host_level_and_timestamp(
    rsyslog: int,
    log_store: LogStore,
    logs_client: httpx.AsyncClient,
    logs_settings: Settings,
    tenant: str,
) -> None:
    since = time.time_ns()
    sent: list[tuple[int, int, str]] = []  # (timestamp in µs, severity, message)
    lines = []
    for number in range(70):
        severity = list(SEVERITIES)[number % len(SEVERITIES)]
        now = datetime.now(UTC)
        micros = int(now.timestamp() * 1_000_000)
        message = f"order {number} shipped"
        sent.append((micros, severity, message))
        stamp = now.isoformat(timespec="microseconds").replace("+00:00", "Z")
        lines.append(f"<{8 * 16 + severity}>1 {stamp} web-7 checkout 4242 - - {message}\n")
    _, writer = await asyncio.open_connection("127.0.0.1", rsyslog)
    writer.write("".join(lines).encode())
    await writer.drain()
    writer.close()
    await writer.wait_closed()

    for suffix in ("_5424", "_3164"):
        await wait_for_lines(log_store, f"{tenant}{suffix}", len(sent))
        streams = await loki_streams(
            logs_client, logs_settings, f"{tenant}{suffix}", '{service="checkout"}', since
        )
        received = sorted(
            (int(value[0]) // 1000, stream["stream"]["level"], value[1])
            for stream in streams
            for value in stream["values"]
        )
        assert received == sorted(
            (micros, SEVERITIES[severity], message) for micros, severity, message in sent
        ), suffix
        assert {stream["stream"]["host"] for stream in streams} == {"web-7"}
        assert {stream["stream"]["source"] for stream in streams} == {"syslog"}
        for stream in streams:
            assert stream["values"][0][2]["structuredMetadata"]["facility"] == "local0"
            assert stream["values"][0][2]["structuredMetadata"]["pid"] == "4242"
