"""A writer SIGKILLed during a sustained ingest through the buffer loses no acknowledged line
and stores none twice. The writer runs as `shopkeeper logs writer` in its own process on its
own chDB directory; lines are counted there once the last writer has drained the stream."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shopkeeper.logs.buffer.publisher import BufferPublisher
from shopkeeper.logs.ingest.errors import IngestOverloaded
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import records_batch
from tests.logs.buffer.conftest import AMQP_URL

COUNT_SCRIPT = """
import asyncio, json
from shopkeeper.core.settings import get_settings
from shopkeeper.logs.store import open_store

async def main():
    store = await open_store(get_settings())
    rows = await store.query(
        f"SELECT message, count() AS n FROM {store.table} WHERE tenant = 'crash' GROUP BY message"
    )
    await store.close()
    print(json.dumps({row["message"]: row["n"] for row in rows}))

asyncio.run(main())
"""


def environment(tmp_path: Path, stream: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    return env | {
        "SHOPKEEPER_VAR_DIR": str(tmp_path / "var"),
        "SHOPKEEPER_LOGS_DIR": str(tmp_path / "chdb"),
        "SHOPKEEPER_LOGS_BUFFER_URL": AMQP_URL,
        "SHOPKEEPER_LOGS_BUFFER_STREAM": stream,
        "SHOPKEEPER_LOGS_SYSLOG_PORT": "0",
        "SHOPKEEPER_LOGS_BATCH_LINES": "1000000",  # groups end by time: a replay must not regroup
        "SHOPKEEPER_LOG_LEVEL": "DEBUG",
    }


def start_writer(env: dict[str, str], idle_exit: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.cli", "logs", "writer", "--idle-exit", str(idle_exit)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def wait_for_groups(writer: subprocess.Popen[bytes], groups: int) -> bytes:
    """Reads the writer's log until it has stored `groups` groups (or ended)."""
    assert writer.stdout is not None
    output = b""
    while groups:
        line = writer.stdout.readline()
        if not line:
            break
        output += line
        if b"logs_writer_stored" in line:
            groups -= 1
    return output


@pytest.mark.timeout(300)  # four writer start-ups on a busy 2-core machine
async def test_a_killed_writer_loses_no_acknowledged_line_and_stores_none_twice(
    stream_name: str, tmp_path: Path
) -> None:
    env = environment(tmp_path, stream_name)
    acknowledged: set[str] = set()
    attempted: set[str] = set()
    publisher = BufferPublisher(
        AMQP_URL,
        stream=stream_name,
        max_bytes=20 * 1024**3,
        max_in_flight_lines=50_000,
        confirm_timeout=10.0,
    )
    await publisher.start()
    sending = True

    async def sender(name: str) -> None:
        number = 0
        while sending:
            messages = [f"{name}-{number + i}" for i in range(250)]
            number += 250
            attempted.update(messages)
            batch = records_batch(
                [LogRecord(message=m, service="crash", level="info") for m in messages],
                tenant="crash",
                source="ndjson",
            )
            try:
                await publisher.write([batch])
            except IngestOverloaded:
                await asyncio.sleep(0.05)
                continue
            acknowledged.update(messages)
            await asyncio.sleep(0.1)  # ~10k lines/s in all: sustained, yet quick to drain

    writer = start_writer(env, idle_exit=3)
    senders = [asyncio.create_task(sender(f"s{i}")) for i in range(4)]
    try:
        # Kill the writer three times while lines keep coming, each time after it has stored a
        # few groups and at a different point of its cycle (collecting, recording, inserting).
        for groups, pause in ((2, 0.0), (3, 0.3), (2, 0.45)):
            await asyncio.to_thread(wait_for_groups, writer, groups)
            await asyncio.sleep(pause)
            writer.send_signal(signal.SIGKILL)
            await asyncio.to_thread(writer.wait)
            writer = start_writer(env, idle_exit=3)
        await asyncio.sleep(1.5)
    finally:
        sending = False
        await asyncio.gather(*senders)
        await publisher.stop()
    # The last writer drains the stream, then exits on its own after 3 quiet seconds.
    try:
        errors, _ = await asyncio.to_thread(writer.communicate, timeout=180)
    finally:
        if writer.poll() is None:
            writer.kill()
    assert writer.returncode == 0, errors.decode()[-3000:]

    counted = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", COUNT_SCRIPT],
        env=env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    stored: dict[str, int] = json.loads(counted.stdout.decode().strip().splitlines()[-1])
    assert len(acknowledged) > 10_000  # the ingest was sustained
    assert not acknowledged - stored.keys(), "acknowledged lines lost"
    assert {m: n for m, n in stored.items() if n > 1} == {}, "lines stored twice"
    assert stored.keys() <= attempted
    if acknowledged == attempted:  # no publish failed: stored is exactly what was acknowledged
        assert stored.keys() == acknowledged
    assert sum(stored.values()) == len(stored)
    print(f"acknowledged {len(acknowledged)} lines, stored {sum(stored.values())}")
