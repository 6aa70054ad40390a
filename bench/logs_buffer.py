"""`python -m bench.logs_buffer`: the production ingest buffer (a RabbitMQ stream) in one run:
gateways publishing with publisher confirms, then a writer draining it into chDB, beside chDB's
own insert of the same batches.

Steps: build 1,000-line batches of ~195-byte NDJSON lines (the HTTP bench's lines); publish them
for `--duration` seconds from `--publishers` concurrent publishers of one gateway process (each
publish awaits its confirm, as a request does); then run `BufferWriter` on a fresh chDB
directory until the stream is drained; then insert the same batches into a fresh table
directly. Deletes its stream. Appends a dated section to bench/RESULTS.md unless `--no-record`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from shopkeeper.logs.store import Batch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def publish(
    stream: str, batches: list[Batch], publishers: int, duration: float
) -> dict[str, float]:
    from shopkeeper.logs.buffer.publisher import BufferPublisher

    gateway = BufferPublisher(
        AMQP_URL,
        stream=stream,
        max_bytes=20 * 1024**3,
        max_in_flight_lines=10_000_000,
        confirm_timeout=30,
    )
    await gateway.start()
    sent = 0
    deadline = time.perf_counter() + duration

    async def publisher(offset: int) -> None:
        nonlocal sent
        index = offset
        while time.perf_counter() < deadline:
            batch = batches[index % len(batches)]
            await gateway.write([batch])
            sent += batch.lines
            index += publishers

    started = time.perf_counter()
    await asyncio.gather(*(publisher(i) for i in range(publishers)))
    seconds = time.perf_counter() - started
    await gateway.stop()
    return {"lines": sent, "seconds": seconds, "lines_per_s": sent / seconds}


async def drain(stream: str, logs_dir: Path) -> dict[str, float]:
    from shopkeeper.logs.store.embedded import EmbeddedStore
    from shopkeeper.logs.writer import BufferWriter

    store = EmbeddedStore(logs_dir, database="buffered", retention_days=14)
    await store.open()
    try:
        writer = BufferWriter(store, AMQP_URL, stream, 20 * 1024**3, idle_exit_seconds=2.0)
        started = time.perf_counter()
        await writer.run()
        seconds = time.perf_counter() - started - 2.0  # less the idle wait that ends it
    finally:
        await store.close()
    return {"lines": writer.stored_lines, "lines_per_s": writer.stored_lines / seconds}


async def engine(batches: list[Batch], logs_dir: Path, group: int) -> float:
    from shopkeeper.logs.store.embedded import EmbeddedStore

    store = EmbeddedStore(logs_dir, database="direct", retention_days=14)
    await store.open()
    try:
        started = time.perf_counter()
        for i in range(0, len(batches), group):
            await store.insert_many(batches[i : i + group])
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    return sum(b.lines for b in batches) / seconds


async def delete_stream(stream: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(stream)


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from bench.logs_ingest import synthetic_lines
    from shopkeeper.logs.store import Batch

    lines = synthetic_lines(args.lines)
    average = sum(len(line) + 1 for line in lines) / len(lines)
    batches = [
        Batch(
            tenant="default",
            source="ndjson",
            format="json_lines",
            payload=b"\n".join(lines[i : i + 1000]) + b"\n",
            lines=len(lines[i : i + 1000]),
        )
        for i in range(0, len(lines), 1000)
    ]
    stream = f"bench.logs.{secrets.token_hex(4)}"
    work = Path(tempfile.mkdtemp(prefix="logs-buffer-bench-"))
    try:
        published = await publish(stream, batches, args.publishers, args.duration)
        drained = await drain(stream, work / "chdb")
        direct = await engine(batches, work / "chdb", 50)
    finally:
        await delete_stream(stream)
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    report = (
        f"publish with confirms: {published['lines_per_s']:,.0f} lines/s "
        f"({published['lines']:,.0f} lines in 1,000-line batches of ~{average:.0f}-byte lines, "
        f"{args.publishers} concurrent publishers, one connection, {published['seconds']:.1f} s)\n"
        f"writer draining the stream into chDB: {drained['lines_per_s']:,.0f} lines/s "
        f"({drained['lines']:,.0f} lines)\n"
        f"chDB insert of the same batches, 50 per INSERT, no buffer: {direct:,.0f} lines/s\n"
        f"writer / direct insert: {drained['lines_per_s'] / direct:.0%}"
    )
    print(report)
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m bench.logs_buffer " + " ".join(sys.argv[1:])
        with RESULTS.open("a") as results:
            results.write(
                f"\n### Logs ingest buffer (RabbitMQ stream), {stamp}\n\n"
                f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load1:.1f} "
                f"at the end. Command: `{command}`.\n\n```\n{report}\n```\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs_buffer", description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000, help="distinct lines generated")
    parser.add_argument("--publishers", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
