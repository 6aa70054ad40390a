"""`shopkeeper logs ...` as a user runs it: a subprocess, against a live server or its own
local store."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import orjson

from shopkeeper.logs.store import LogStore
from tests.conftest import free_port
from tests.logs.conftest import LiveIngest, stored_rows


def shopkeeper(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper.cli", "logs", *arguments],
        capture_output=True,
        check=False,
        timeout=120,
        env=env,
    )


async def run(
    *arguments: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    done = await asyncio.to_thread(shopkeeper, *arguments, env=env)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return done


async def test_generate_prints_a_realistic_stream() -> None:
    done = await run("generate", "--lines", "400", "--stdout", "--seed", "3")
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == 400
    assert {"storefront", "checkout", "payments"} <= {line["service"] for line in lines}
    assert {"info", "debug"} <= {line["level"] for line in lines}
    requests = [line for line in lines if "http" in line]
    assert requests and all(line["trace_id"] for line in requests)
    # A request's lines across services share its trace id.
    by_trace: dict[str, set[str]] = {}
    for line in lines:
        by_trace.setdefault(line["trace_id"], set()).add(line["service"])
    assert any(len(services) > 1 for services in by_trace.values())
    timestamps = [line["timestamp"] for line in lines]
    assert timestamps == sorted(timestamps)
    again = await run("generate", "--lines", "400", "--stdout", "--seed", "3")
    repeated = [orjson.loads(line) for line in again.stdout.splitlines()]
    for line in (*lines, *repeated):  # timestamps start at the time of the run
        del line["timestamp"]
    assert repeated == lines


async def test_ingest_a_file_of_json_and_plain_lines_into_a_server(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str, tmp_path: Path
) -> None:
    path = tmp_path / "app.log"
    path.write_bytes(
        b'{"message": "json line", "level": "error", "service": "api"}\n'
        b"a plain line\n\n"
        b"another plain line\n"
    )
    done = await run(
        "ingest", str(path), "--url", live_ingest.url, "--key", live_ingest.key, "--service", "web"
    )
    assert b"ingested 3 lines" in done.stderr
    rows = await stored_rows(log_store, tenant)
    assert sorted((row["message"], row["service"], row["level"]) for row in rows) == [
        ("a plain line", "web", "unknown"),
        ("another plain line", "web", "unknown"),
        ("json line", "api", "error"),
    ]


async def test_generate_into_a_server(
    live_ingest: LiveIngest, log_store: LogStore, tenant: str
) -> None:
    await run("generate", "--lines", "2500", "--url", live_ingest.url, "--key", live_ingest.key)
    rows = await stored_rows(log_store, tenant)
    assert len(rows) == 2500
    assert all(row["trace_id"] for row in rows)


async def test_ingest_into_the_local_store_then_query_it(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    env |= {"SHOPKEEPER_VAR_DIR": str(tmp_path), "SHOPKEEPER_LOGS_SYSLOG_PORT": "0"}
    path = tmp_path / "lines.ndjson"
    path.write_bytes(b"".join(b'{"msg": "local %d", "service": "cli"}\n' % i for i in range(30)))
    await run("ingest", str(path), env=env)
    done = await run("query", '{service="cli"} |= "local 2"', "--json", env=env)
    body = orjson.loads(done.stdout)
    lines = sorted(value[1] for stream in body["data"]["result"] for value in stream["values"])
    assert lines == ["local 2", "local 20", "local 21", "local 22", "local 23", "local 24",
                     "local 25", "local 26", "local 27", "local 28", "local 29"]  # fmt: skip


async def test_writer_without_a_buffer_says_so() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    done = await asyncio.to_thread(shopkeeper, "writer", env=env)
    assert done.returncode == 2
    assert b"SHOPKEEPER_LOGS_BUFFER_URL" in done.stderr


async def test_standalone_syslog_receiver_stores_what_it_got_before_sigterm(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    env |= {"SHOPKEEPER_VAR_DIR": str(tmp_path)}
    port = free_port()
    receiver = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.cli", "logs", "syslog", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=1)
                break
            except OSError:
                assert receiver.poll() is None, receiver.stderr.read() if receiver.stderr else ""
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
        connection.sendall(b"<11>1 - edge-1 standalone - - - first\n<14>standalone: second\n")
        connection.close()
        await asyncio.sleep(0.5)
    finally:
        receiver.send_signal(signal.SIGTERM)
        await asyncio.to_thread(receiver.wait, 60)
    assert receiver.returncode == 0, receiver.stderr.read() if receiver.stderr else ""
    done = await run("query", '{service="standalone"}', "--json", "--direction", "forward", env=env)
    values = [
        (stream["stream"]["level"], value[1])
        for stream in orjson.loads(done.stdout)["data"]["result"]
        for value in stream["values"]
    ]
    assert sorted(values) == [("error", "first"), ("info", "second")]
