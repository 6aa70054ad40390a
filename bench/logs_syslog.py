"""`python -m bench.logs_syslog`: syslog over TCP into embedded storage (chDB), beside chDB's own
INSERT of the same frames, parsed by the same SQL, into the same table, in one run.

Steps: build `--lines` syslog lines (~195 bytes; half RFC 5424 with structured data, half RFC
3164; fixed seed); start the receiver and a group-commit writer on a fresh chDB directory in
this process; a separate sender process pushes the lines over `--connections` TCP connections
(newline framing) as fast as the receiver reads them; the figure is lines stored per second,
from the first byte to the last line stored. Then the engine's limit: the same frames, as the
receiver's rows, inserted (and parsed) by chDB in the receiver's largest batch size; and the
receiver's own work (cutting 64 KiB reads into rows) alone.
Appends a dated section to bench/RESULTS.md unless `--no-record`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

SENDER = """
import socket, sys
port, path, connections = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
data = open(path, "rb").read()
lines = data.split(b"\\n")[:-1]
step = len(lines) // connections
parts = [b"\\n".join(lines[i * step:(i + 1) * step if i < connections - 1 else None]) + b"\\n"
         for i in range(connections)]
socks = [socket.create_connection(("127.0.0.1", port)) for _ in parts]
import threading
threads = [threading.Thread(target=s.sendall, args=(p,)) for s, p in zip(socks, parts)]
for t in threads: t.start()
for t in threads: t.join()
for s in socks: s.close()
"""


def syslog_lines(count: int, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    services = ("checkout", "payments", "storefront", "inventory", "nginx", "sshd")
    routes = ("/api/v1/orders", "/api/v1/cart/items", "/api/v1/products", "/api/v1/checkout")
    start = time.time() - 600
    lines = []
    for i in range(count):
        moment = datetime.fromtimestamp(start + i / 2000, UTC)
        service = rng.choice(services)
        host = f"web-{rng.randint(1, 12)}"
        severity = rng.choice((6, 6, 6, 6, 6, 7, 5, 4, 3))
        pri = 8 * 16 + severity
        message = (
            f"GET {rng.choice(routes)}/{rng.randint(1000, 99999)} "
            f"{rng.choice((200, 200, 201, 404, 500))} {rng.uniform(1, 400):.1f}ms "
            f"user={rng.randint(1, 50000)} cache={rng.choice(('hit', 'miss'))}"
        )
        if i % 2:
            stamp = moment.isoformat(timespec="microseconds").replace("+00:00", "Z")
            line = (
                f"<{pri}>1 {stamp} {host} {service} {rng.randint(100, 9999)} - "
                f'[req@32473 trace="{rng.getrandbits(64):016x}"] {message}'
            )
        else:
            stamp = moment.strftime("%b %d %H:%M:%S")
            line = f"<{pri}>{stamp} {host} {service}[{rng.randint(100, 9999)}]: {message}"
        lines.append(line.encode())
    return lines


async def receive(
    lines_file: Path, count: int, connections: int, logs_dir: Path, batch_lines: int
) -> dict[str, float]:
    from shopkeeper.logs.ingest.syslog_server import start_syslog
    from shopkeeper.logs.ingest.writer import GroupCommitWriter
    from shopkeeper.logs.store.embedded import EmbeddedStore

    store = EmbeddedStore(logs_dir, database="shopkeeper_logs", retention_days=14)
    await store.open()
    writer = GroupCommitWriter(
        store,
        max_pending_lines=400_000,
        batch_lines=batch_lines,
        concurrent_rounds=store.concurrent_inserts,
    )
    await writer.start()
    servers = await start_syslog(writer, port=0, flush_seconds=0.2, batch_lines=batch_lines)
    try:
        started = time.perf_counter()
        sender = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SENDER, str(servers.port), str(lines_file), str(connections)
        )
        while servers.collector.stored < count:
            await asyncio.sleep(0.01)
            if sender.returncode is not None and sender.returncode != 0:
                raise RuntimeError("the sender failed")
        seconds = time.perf_counter() - started
        await sender.wait()
        rows = await store.query(f"SELECT count() AS n FROM {store.table}")
    finally:
        await servers.stop()
        await writer.stop()
        await store.close()
    return {"lines_per_s": count / seconds, "seconds": seconds, "stored": rows[0]["n"]}


async def engine_limit(
    lines: list[bytes], logs_dir: Path, batch_lines: int, repeats: int
) -> dict[str, float]:
    """chDB inserting the same frames as the receiver's rows, parsed by the same SQL, in the
    same batch size; and the receiver's framing alone."""
    from shopkeeper.logs.ingest.syslog import take_rows
    from shopkeeper.logs.store import Batch
    from shopkeeper.logs.store.embedded import EmbeddedStore
    from shopkeeper.logs.store.syslog_transform import row_prefix

    stream = b"\n".join(lines) + b"\n"
    prefix = row_prefix("10.0.0.1", time.time_ns())
    started = time.perf_counter()
    buffer = bytearray()
    rows: list[bytes] = []
    for start in range(0, len(stream), 65536):
        buffer += stream[start : start + 65536]
        rows.append(take_rows(buffer, prefix)[0])
    framing_seconds = time.perf_counter() - started
    every_row = b"".join(rows).splitlines(keepends=True)
    batches = [
        Batch(
            tenant="default",
            source="syslog",
            format="syslog",
            payload=b"".join(every_row[i : i + batch_lines]),
            lines=len(every_row[i : i + batch_lines]),
        )
        for i in range(0, len(every_row), batch_lines)
    ]
    store = EmbeddedStore(logs_dir, database="engine", retention_days=14)
    await store.open()
    best = float("inf")
    try:
        for _ in range(repeats):
            await store.command(f"TRUNCATE TABLE {store.table}")
            began = time.perf_counter()
            for batch in batches:
                await store.insert(batch)
            best = min(best, time.perf_counter() - began)
    finally:
        await store.close()
    return {
        "insert_lines_per_s": len(lines) / best,
        "framing_lines_per_s": len(lines) / framing_seconds,
    }


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    work = Path(tempfile.mkdtemp(prefix="logs-syslog-bench-"))
    try:
        lines = syslog_lines(args.lines)
        average = sum(len(line) + 1 for line in lines) / len(lines)
        lines_file = work / "lines.log"
        lines_file.write_bytes(b"\n".join(lines) + b"\n")
        tcp = await receive(
            lines_file, len(lines), args.connections, work / "chdb", args.batch_lines
        )
        limit = await engine_limit(lines, work / "chdb", args.batch_lines, args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load1 = os.getloadavg()[0]
    report = (
        f"syslog over TCP: {tcp['lines_per_s']:,.0f} lines/s stored ({len(lines):,} lines of "
        f"~{average:.0f} bytes, half RFC 5424, half RFC 3164, {args.connections} connections, "
        f"{tcp['seconds']:.1f} s first byte to last line stored; {tcp['stored']:,} rows)\n"
        f"chDB INSERT of the same frames, parsed by the same SQL, {args.batch_lines:,} a batch: "
        f"{limit['insert_lines_per_s']:,.0f} lines/s (best of {args.repeats})\n"
        f"the receiver's own work alone (64 KiB reads cut into rows): "
        f"{limit['framing_lines_per_s']:,.0f} lines/s\n"
        f"TCP / engine insert: {tcp['lines_per_s'] / limit['insert_lines_per_s']:.0%}"
    )
    print(report)
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m bench.logs_syslog " + " ".join(sys.argv[1:])
        with RESULTS.open("a") as results:
            results.write(
                f"\n### Logs syslog ingest, {stamp}\n\n"
                f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load1:.1f} "
                f"at the end. Command: `{command}`.\n\n```\n{report}\n```\n"
            )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs_syslog", description=__doc__)
    parser.add_argument("--lines", type=int, default=500_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--batch-lines", type=int, default=50_000, help="the receiver's and writer's INSERT size"
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
