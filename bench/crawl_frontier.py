"""Crawl frontier alone: dequeue+ack per second on Redis and PostgreSQL; Redis bytes per seen URL.

Politeness wide open (delay 0, max_inflight 1,000 on every host), `--hosts` hosts, `--urls`
URLs queued first; then `--tasks` concurrent loops in ONE process each lease `--batch` URLs and
complete them at once, until the frontier is drained. Each figure stands beside a limit measured
from the same client in the same run:

- Redis: single `INCR` round trips (the latency floor of any one-call-per-step design) and
  pipelined `SADD` of `--batch` members per round trip (what a client can push at all);
- PostgreSQL: `SELECT 1` round trips through the same engine and the same number of tasks.

Memory: `--seen-urls` fingerprints go into one crawl's seen set through the real `add` script
(queues included, then the queues are deleted) and `MEMORY USAGE` of every bucket key is summed;
`--seen-only-urls` more go in by pipelined `SADD` to the same bucket keys (the layout `add` uses)
for a larger measurement without holding their queue entries.

Run:  PYTHONPATH=src .venv/bin/python bench/crawl_frontier.py --append
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shopkeeper.core.db import Database
from shopkeeper.core.migrate import upgrade_database
from shopkeeper.core.settings import Settings
from shopkeeper.crawl.frontier.base import Frontier, HostPolicy, NewURL
from shopkeeper.crawl.frontier.redis import RedisFrontier, bucket_of
from shopkeeper.crawl.frontier.sql import SQLFrontier

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
OPEN = HostPolicy(delay_ms=0, max_inflight=1000)
LEASE_S = 60.0


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    note: str = ""


def fingerprints(count: int, salt: int) -> list[int]:
    """Signed 64-bit values spread like blake2b's (random bytes)."""
    raw = os.urandom(8 * count)
    return [
        int.from_bytes(raw[i : i + 8], "big", signed=True) ^ salt for i in range(0, len(raw), 8)
    ]


def new_urls(count: int, hosts: int) -> list[NewURL]:
    return [
        NewURL(f"https://shop{n % hosts}.example:443/p/{n}", fp, f"shop{n % hosts}.example:443", 1)
        for n, fp in enumerate(fingerprints(count, 0))
    ]


async def fill(frontier: Frontier, urls: list[NewURL], hosts: int) -> tuple[uuid.UUID, float]:
    """A new active crawl holding `urls`; and how many URLs per second `add` took in."""
    crawl_id = uuid.uuid4()
    for n in range(hosts):
        await frontier.set_host_policy(crawl_id, f"shop{n}.example:443", OPEN)
    await frontier.set_crawl_active(crawl_id, True)
    started = time.perf_counter()
    for start in range(0, len(urls), 5000):
        await frontier.add(crawl_id, urls[start : start + 5000])
    return crawl_id, len(urls) / (time.perf_counter() - started)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` (processes that exited meanwhile count as zero)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


async def redis_cpu(client: Redis) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def cpu_note(client_s: float, server_s: float, server: str, urls: int) -> str:
    return (
        f"CPU per 1,000 URLs: this client {1e6 * client_s / urls:.0f} ms, "
        f"{server} {1e6 * server_s / urls:.0f} ms"
    )


async def drain(frontier: Frontier, total: int, tasks: int, batch: int) -> tuple[float, int]:
    done = 0

    async def loop() -> None:
        nonlocal done
        idle = 0
        while done < total and idle < 50:
            leases = await frontier.lease(worker="bench", limit=batch, lease_seconds=LEASE_S)
            if not leases:
                idle += 1
                await asyncio.sleep(0.001)
                continue
            idle = 0
            acked = await frontier.complete(leases)
            done += sum(acked)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(tasks)))
    return time.perf_counter() - started, done


async def timed(calls: int, tasks: int, step: object) -> float:
    """Calls per second of `step` (an async callable) from `tasks` concurrent loops."""
    assert callable(step)
    per_task = calls // tasks

    async def loop() -> None:
        for _ in range(per_task):
            await step()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(tasks)))
    return per_task * tasks / (time.perf_counter() - started)


async def bench_redis(args: argparse.Namespace) -> list[Figure]:
    client = Redis.from_url(args.redis_url)
    namespace = f"bench-frontier-{secrets.token_hex(4)}"
    frontier = RedisFrontier(client, namespace=namespace)
    figures: list[Figure] = []
    try:
        urls = new_urls(args.urls, args.hosts)
        await fill(frontier, urls, args.hosts)
        client_before, server_before = time.process_time(), await redis_cpu(client)
        seconds, done = await drain(frontier, len(urls), args.tasks, args.batch)
        client_s = time.process_time() - client_before
        server_s = await redis_cpu(client) - server_before
        figures.append(
            Figure(
                "Redis frontier: dequeue+ack",
                done / seconds,
                "URLs/s",
                f"{done:,} URLs, {args.hosts} hosts, {args.tasks} tasks x lease {args.batch}; "
                + cpu_note(client_s, server_s, "Redis server", done),
            )
        )
        key = f"{namespace}:raw"
        incr_rate = await timed(20_000, args.tasks, lambda: client.incr(key))
        figures.append(Figure("limit: Redis INCR round trips", incr_rate, "calls/s"))
        members = fingerprints(args.batch, 1)

        async def sadd_batch() -> None:
            await client.sadd(f"{namespace}:rawset", *members)

        sadd_rate = await timed(4_000, args.tasks, sadd_batch) * args.batch
        figures.append(
            Figure(
                f"limit: Redis SADD, {args.batch} members per call",
                sadd_rate,
                "members/s",
            )
        )
        figures += await redis_memory(client, frontier, args)
    finally:
        await frontier.delete_namespace()
        await client.aclose()
    return figures


async def seen_bytes(client: Redis, frontier: RedisFrontier, crawl_id: uuid.UUID) -> int:
    total = 0
    buckets = [frontier.crawl_key(crawl_id, f"s:{bucket:04x}") for bucket in range(1 << 16)]
    for start in range(0, len(buckets), 4096):
        async with client.pipeline(transaction=False) as pipe:
            for key in buckets[start : start + 4096]:
                pipe.memory_usage(key, samples=0)
            total += sum(value or 0 for value in await pipe.execute())
    return total


async def redis_memory(
    client: Redis, frontier: RedisFrontier, args: argparse.Namespace
) -> list[Figure]:
    figures: list[Figure] = []
    crawl_id = uuid.uuid4()
    urls = new_urls(args.seen_urls, args.hosts)
    started = time.perf_counter()
    for start in range(0, len(urls), 5000):
        await frontier.add(crawl_id, urls[start : start + 5000])
    add_rate = len(urls) / (time.perf_counter() - started)
    figures.append(Figure("Redis add (dedup + enqueue), 5,000 per call", add_rate, "URLs/s"))
    del urls
    async for key in client.scan_iter(match=frontier.crawl_key(crawl_id, "q:*"), count=1000):
        await client.unlink(key)
    used = await seen_bytes(client, frontier, crawl_id)
    figures.append(
        Figure(
            f"Redis seen set, {args.seen_urls:,} URLs (real add script)",
            used / args.seen_urls,
            "bytes/URL",
            f"{used / 2**20:.1f} MiB in 65,536 integer-set buckets",
        )
    )
    if args.seen_only_urls:
        remaining = args.seen_only_urls - args.seen_urls
        # A million at a time: ~15 members per bucket and SADD.
        for start in range(0, remaining, 1_000_000):
            batch = fingerprints(min(1_000_000, remaining - start), 2 + start)
            by_bucket: dict[str, list[int]] = {}
            for value in batch:
                by_bucket.setdefault(bucket_of(value), []).append(value)
            async with client.pipeline(transaction=False) as pipe:
                for bucket, values in by_bucket.items():
                    pipe.sadd(frontier.crawl_key(crawl_id, f"s:{bucket}"), *values)
                await pipe.execute()
        used = await seen_bytes(client, frontier, crawl_id)
        total = args.seen_only_urls
        encodings = {
            (await client.object("encoding", frontier.crawl_key(crawl_id, f"s:{b:04x}"))).decode()
            for b in range(0, 1 << 16, 4099)
        }
        figures.append(
            Figure(
                f"Redis seen set, {total:,} URLs",
                used / total,
                "bytes/URL",
                f"{used / 2**20:.1f} MiB; per 10M URLs {used / total * 1e7 / 2**20:.0f} MiB; "
                f"sampled bucket encodings {sorted(encodings)}",
            )
        )
    return figures


async def bench_postgres(args: argparse.Namespace) -> list[Figure]:
    admin = create_async_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
    name = f"shopkeeper_bench_frontier_{secrets.token_hex(3)}"
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = args.postgres_admin_url.rsplit("/", 1)[0] + "/" + name
    settings = Settings(
        environment="test",
        database_url=url,
        var_dir=Path("var/bench"),
        secret_key="bench-secret-" + "x" * 40,
        sandbox_webhook_secret="bench",
        database_pool_size=args.tasks,
    )
    database = Database(settings)
    figures: list[Figure] = []
    try:
        await upgrade_database(database)
        frontier = SQLFrontier(database)
        urls = new_urls(args.pg_urls, args.hosts)
        _, add_rate = await fill(frontier, urls, args.hosts)
        figures.append(
            Figure("PostgreSQL add (dedup + enqueue), 5,000 per call", add_rate, "URLs/s")
        )
        async with database.engine.begin() as connection:
            await connection.execute(text("ANALYZE"))
        await database.warm_up()
        async with database.engine.connect() as connection:
            backends = list(
                (
                    await connection.execute(
                        text("SELECT pid FROM pg_stat_activity WHERE datname = :name"),
                        {"name": name},
                    )
                ).scalars()
            )
        client_before, server_before = time.process_time(), cpu_seconds(backends)
        seconds, done = await drain(frontier, len(urls), args.tasks, args.batch)
        client_s = time.process_time() - client_before
        server_s = cpu_seconds(backends) - server_before
        figures.append(
            Figure(
                "PostgreSQL frontier: dequeue+ack",
                done / seconds,
                "URLs/s",
                f"{done:,} URLs, {args.hosts} hosts, {args.tasks} tasks x lease {args.batch}; "
                + cpu_note(client_s, server_s, "PostgreSQL backends", done),
            )
        )

        rate = await select_one_rate(database, args.tasks)
        figures.append(
            Figure(
                "limit: PostgreSQL SELECT 1 round trips",
                rate,
                "calls/s",
                f"{args.tasks} tasks, one held connection each",
            )
        )
    finally:
        await database.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
    return figures


async def select_one_rate(database: Database, tasks: int, calls: int = 20_000) -> float:
    per_task = calls // tasks

    async def loop() -> None:
        async with database.engine.connect() as connection:
            for _ in range(per_task):
                await connection.execute(text("SELECT 1"))

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(tasks)))
    return per_task * tasks / (time.perf_counter() - started)


def report(figures: list[Figure], args: argparse.Namespace, command: str) -> str:
    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") as info:
        models = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    redis_version = subprocess.run(
        ["redis-cli", "-u", args.redis_url, "info", "server"], capture_output=True, text=True
    ).stdout
    version = next(
        (
            line.split(":")[1].strip()
            for line in redis_version.splitlines()
            if "redis_version" in line
        ),
        "?",
    )
    lines = [
        f"## Crawl frontier, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {len(models)} x {models[0] if models else cpu}, load average before "
        f"{args.load_before:.1f}; Redis {version}, PostgreSQL on 127.0.0.1, Python "
        f"{platform.python_version()}. Command: `{command}`",
        "",
        "| measure | value | note |",
        "|---|---|---|",
    ]
    for figure in figures:
        lines.append(f"| {figure.name} | {figure.value:,.1f} {figure.unit} | {figure.note} |")
    return "\n".join(lines) + "\n"


async def run(args: argparse.Namespace) -> list[Figure]:
    figures: list[Figure] = []
    if args.backend in {"redis", "both"}:
        figures += await bench_redis(args)
    if args.backend in {"postgresql", "both"}:
        figures += await bench_postgres(args)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=["redis", "postgresql", "both"], default="both")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument(
        "--postgres-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--urls", type=int, default=200_000, help="URLs drained on Redis")
    parser.add_argument("--pg-urls", type=int, default=100_000, help="URLs drained on PostgreSQL")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--seen-urls", type=int, default=1_000_000)
    parser.add_argument("--seen-only-urls", type=int, default=10_000_000)
    parser.add_argument("--append", action="store_true", help="append a section to RESULTS.md")
    args = parser.parse_args()
    args.load_before = os.getloadavg()[0]
    figures = asyncio.run(run(args))
    section = report(figures, args, "python bench/crawl_frontier.py " + " ".join(sys.argv[1:]))
    print(section)
    if args.append:
        with RESULTS.open("a") as results:
            results.write("\n" + section)


if __name__ == "__main__":
    main()
