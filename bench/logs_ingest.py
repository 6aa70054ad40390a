"""`python -m bench.logs_ingest`: NDJSON ingest over HTTP into embedded storage (chDB), beside
chDB's own `INSERT ... SELECT FROM file()` of the same lines into the same table, in one run.

Steps: write `--lines` synthetic NDJSON lines (~195 bytes each, fixed seed) to a file; start
`shopkeeper serve` (one process: it owns the chDB directory) on a fresh var dir; `--senders`
concurrent clients post `--body-mb` MB bodies for `--duration` seconds; stop the server; read
then open a fresh chDB directory in this process, store the distinct lines once and read the
bytes per line from `system.parts` (after OPTIMIZE FINAL), and time the same transform reading
the same lines with `file()` into the same table.
Appends a dated section to bench/RESULTS.md unless `--no-record`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

_SERVICES = ("storefront", "checkout", "payments", "search", "inventory", "worker")
_LEVELS = ("info",) * 14 + ("debug", "debug", "warn", "error")
_PATHS = ("/products", "/cart", "/orders", "/search", "/categories", "/checkout")
_WORDS = (
    "request",
    "handled",
    "cache",
    "miss",
    "upstream",
    "timeout",
    "retry",
    "queued",
    "user",
    "session",
    "token",
    "payment",
    "declined",
    "stock",
    "reserved",
    "shipment",
    "created",
    "price",
    "updated",
)


def synthetic_lines(count: int, seed: int = 7) -> list[bytes]:
    """Realistic application lines of about 195 bytes: timestamp, level, service, host,
    message, trace id, and two attributes."""
    rng = random.Random(seed)
    start = time.time() - 3600
    lines = []
    for i in range(count):
        moment = datetime.fromtimestamp(start + i / 1000, UTC)
        line = {
            "ts": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": rng.choice(_LEVELS),
            "service": rng.choice(_SERVICES),
            "host": f"web-{rng.randint(1, 12)}",
            "msg": " ".join(rng.choice(_WORDS) for _ in range(4)),
            "trace_id": f"{rng.getrandbits(64):016x}",
            "path": rng.choice(_PATHS),
            "status": rng.choice((200, 200, 200, 201, 304, 404, 500)),
        }
        lines.append(orjson.dumps(line))
    return lines


def bodies(lines: list[bytes], body_bytes: int) -> list[bytes]:
    out, current, size = [], [], 0
    for line in lines:
        current.append(line)
        size += len(line) + 1
        if size >= body_bytes:
            out.append(b"\n".join(current) + b"\n")
            current, size = [], 0
    if current:
        out.append(b"\n".join(current) + b"\n")
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve(var_dir: Path, port: int, background_jobs: bool) -> tuple[subprocess.Popen[bytes], str]:
    """`shopkeeper serve` on a fresh var dir, and a `logs:write` key for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_")}
    env.update(
        SHOPKEEPER_VAR_DIR=str(var_dir),
        SHOPKEEPER_PORT=str(port),
        SHOPKEEPER_LOG_LEVEL="WARNING",
        SHOPKEEPER_RUN_BACKGROUND_IN_PROCESS=str(background_jobs).lower(),
        SHOPKEEPER_CRAWL_INPROCESS_WORKER=str(background_jobs).lower(),
        PYTHONPATH=str(ROOT / "src"),
    )
    cli = [sys.executable, "-m", "shopkeeper.cli"]
    subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [*cli, "keys", "create", "--name", "bench", "--scope", "logs:write"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    log = (var_dir / "serve.log").open("wb")
    server = subprocess.Popen([*cli, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return server, key


async def wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            try:
                if (await http.get(url + "/health/live")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not start")


async def post_body(
    http: httpx.AsyncClient, url: str, key: str, body: bytes, latencies: list[float]
) -> httpx.Response:
    """One NDJSON body to the ingest endpoint; its round trip is appended to `latencies`."""
    started = time.perf_counter()
    response = await http.post(
        url + "/api/v1/logs/ingest",
        content=body,
        headers={"Content-Type": "application/x-ndjson", "Authorization": f"Bearer {key}"},
    )
    latencies.append(time.perf_counter() - started)
    return response


def load_figures(
    accepted: int, elapsed: float, latencies: list[float], rejected: int
) -> dict[str, float]:
    latencies.sort()
    return {
        "lines": accepted,
        "seconds": elapsed,
        "lines_per_s": accepted / elapsed,
        "requests": len(latencies),
        "rejected": rejected,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0,
    }


async def load(
    url: str, key: str, payloads: list[bytes], senders: int, duration: float
) -> dict[str, float]:
    counts = [len(body.splitlines()) for body in payloads]
    stop_at = time.monotonic() + duration
    accepted = 0
    rejected = 0
    latencies: list[float] = []

    async def sender(offset: int) -> None:
        nonlocal accepted, rejected
        async with httpx.AsyncClient(timeout=60) as http:
            i = offset
            while time.monotonic() < stop_at:
                body = payloads[i % len(payloads)]
                response = await post_body(http, url, key, body, latencies)
                if response.status_code == 200:
                    accepted += response.json()["accepted"]
                    assert response.json()["accepted"] == counts[i % len(payloads)]
                elif response.status_code == 429:
                    rejected += 1
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                else:
                    raise RuntimeError(f"{response.status_code}: {response.text[:500]}")
                i += senders

    started = time.monotonic()
    await asyncio.gather(*(sender(n) for n in range(senders)))
    elapsed = time.monotonic() - started
    return load_figures(accepted, elapsed, latencies, rejected)


def storage_per_line(db: Any) -> dict[str, float]:
    """Bytes on disk per stored line, after merging to one part per partition."""
    db.query("OPTIMIZE TABLE shopkeeper_logs.logs FINAL")
    row = orjson.loads(
        db.query(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS disk, "
            "sum(secondary_indices_compressed_bytes) AS indexes "
            "FROM system.parts WHERE database = 'shopkeeper_logs' AND table = 'logs' "
            "AND active",
            "JSONEachRow",
        ).bytes()
    )
    rows = int(row["rows"])
    return {
        "rows": rows,
        "bytes_per_line": int(row["disk"]) / rows if rows else 0,
        "index_bytes_per_line": int(row["indexes"]) / rows if rows else 0,
    }


def engine_limit(
    lines_file: Path, lines: int, work_dir: Path, repeats: int
) -> tuple[dict[str, float], dict[str, float] | None]:
    """The same transform, same table, lines read by chDB itself with `file()`; and, the first
    time, the storage per line of those distinct lines stored once."""
    from chdb import session

    from shopkeeper.logs.store import schema
    from shopkeeper.logs.store.base import insert_sql
    from shopkeeper.logs.store.embedded import chdb_parameters

    first = not work_dir.exists()
    db = session.Session(str(work_dir))
    try:
        for statement in schema.create_table_sql("shopkeeper_logs", 14):
            db.query(statement)
        relation = f"file('{lines_file}', 'LineAsString', 'line String')"
        sql = insert_sql("shopkeeper_logs.logs", "json_lines", relation)
        params = chdb_parameters({"tenant": "default", "source": "ndjson", "extra": "{}"})
        storage = None
        if first:
            db.query(sql, params=params)
            storage = storage_per_line(db)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            db.query(sql, params=params)
            best = min(best, time.perf_counter() - started)
    finally:
        db.close()
    return {"lines_per_s": lines / best, "seconds": best}, storage


async def writer_only(
    path: Path, payloads: list[bytes], senders: int, duration: float
) -> dict[str, float]:
    """The same bodies handed straight to the group-commit writer in this process, no HTTP:
    what the storage path does on its own."""
    from shopkeeper.logs.ingest.body import count_lines
    from shopkeeper.logs.ingest.writer import GroupCommitWriter
    from shopkeeper.logs.store import Batch
    from shopkeeper.logs.store.embedded import EmbeddedStore

    store = EmbeddedStore(path, database="shopkeeper_logs", retention_days=14)
    await store.open()
    writer = GroupCommitWriter(
        store,
        max_pending_lines=400_000,
        batch_lines=50_000,
        concurrent_rounds=store.concurrent_inserts,
    )
    await writer.start()
    stored = 0
    stop_at = time.monotonic() + duration

    async def sender(offset: int) -> None:
        nonlocal stored
        i = offset
        while time.monotonic() < stop_at:
            body = payloads[i % len(payloads)]
            lines = count_lines(body)
            batch = Batch(
                tenant="default", source="ndjson", format="json_lines", payload=body, lines=lines
            )
            await writer.write([batch])
            stored += lines
            i += senders

    started = time.monotonic()
    try:
        await asyncio.gather(*(sender(n) for n in range(senders)))
    finally:
        elapsed = time.monotonic() - started
        await writer.stop()
        await store.close()
    return {"lines_per_s": stored / elapsed}


async def run(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    work = Path(tempfile.mkdtemp(prefix="logs-bench-"))
    try:
        lines = synthetic_lines(args.lines)
        average = sum(len(line) + 1 for line in lines) / len(lines)
        payloads = bodies(lines, int(args.body_mb * 1024 * 1024))
        lines_file = work / "lines.ndjson"
        lines_file.write_bytes(b"\n".join(lines) + b"\n")
        var_dir = work / "var"
        var_dir.mkdir()
        load_before = os.getloadavg()[0]
        # The engine's limit before and after the HTTP run (the better counts): the machine's
        # speed moves between minutes, and HTTP is measured between the two.
        before, storage = engine_limit(lines_file, len(lines), work / "engine", args.repeats)
        assert storage is not None
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server, key = serve(var_dir, port, args.background_jobs)
        try:
            await wait_ready(url)
            await load(url, key, payloads[:2], args.senders, 2)  # warm-up
            http = await load(url, key, payloads, args.senders, args.duration)
        finally:
            server.terminate()
            server.wait(timeout=60)
        after, _ = engine_limit(lines_file, len(lines), work / "engine", args.repeats)
        in_process = (
            await writer_only(work / "writer", payloads, args.senders, args.duration)
            if args.writer
            else None
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    limit = max(before, after, key=lambda result: result["lines_per_s"])
    ratio = http["lines_per_s"] / limit["lines_per_s"]
    load1 = os.getloadavg()[0]
    report = (
        f"HTTP NDJSON{'' if args.background_jobs else ' (no in-process background jobs)'}: "
        f"{http['lines_per_s']:,.0f} lines/s ({http['lines']:,} lines in "
        f"{http['seconds']:.1f} s, {http['requests']} requests of ~{args.body_mb} MB, "
        f"{args.senders} senders, p50 {http['p50_ms']:.0f} ms, p99 {http['p99_ms']:.0f} ms, "
        f"{http['rejected']} answered 429)\n"
        f"chDB INSERT ... SELECT FROM file(), same transform and table: "
        f"{before['lines_per_s']:,.0f} lines/s before, {after['lines_per_s']:,.0f} after "
        f"({len(lines):,} lines, best of {args.repeats} each)\n"
        f"HTTP / engine (the better of the two): {ratio:.0%}\n"
        + (
            f"the same bodies straight into the group-commit writer, no HTTP (after): "
            f"{in_process['lines_per_s']:,.0f} lines/s\n"
            if in_process
            else ""
        )
        + f"storage: {storage['bytes_per_line']:.1f} bytes per line on disk "
        f"(of which text index and blooms {storage['index_bytes_per_line']:.1f}; "
        f"{storage['rows']:,} distinct lines stored once, raw line {average:.0f} bytes)"
    )
    print(report)
    if args.record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = "python -m bench.logs_ingest " + " ".join(sys.argv[1:])
        RESULTS.open("a").write(
            f"\n### Logs ingest, {stamp}\n\n"
            f"Machine: {platform.node()}, {os.cpu_count()} CPUs, 1-minute load average "
            f"{load_before:.1f} at the start, {load1:.1f} at the end (other engineers' test "
            f"suites share the machine). Command: `{command}`.\n\n```\n{report}\n```\n"
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.logs_ingest", description=__doc__)
    parser.add_argument("--lines", type=int, default=300_000, help="distinct lines generated")
    parser.add_argument("--body-mb", type=float, default=2.0)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--no-background-jobs",
        dest="background_jobs",
        action="store_false",
        help="serve without the shop's in-process outbox relay, periodic jobs and crawl worker "
        "(`make run` has them), to see what they cost the ingest",
    )
    parser.add_argument(
        "--writer",
        action="store_true",
        help="also feed the same bodies to the group-commit writer in-process (no HTTP)",
    )
    parser.add_argument("--no-record", dest="record", action="store_false")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
