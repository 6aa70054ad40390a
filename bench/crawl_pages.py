"""Crawl throughput: pages fetched, parsed and stored per second by `shopkeeper crawl worker`
processes against the local test site, politeness wide open, on PostgreSQL with the SQL frontier
and with the Redis frontier; beside the site's own capacity (wrk on the same pages) and
`scrapy bench`, measured in the same run.

The site (tests/support/crawl_site.py) runs in its own process with `--pages` fixed pages of
20 links each (every page reachable from "/"). Workers are started first and waited for (their
imports are not crawl time); the clock runs from the crawl's creation to its `finished` status,
so robots.txt, every lease, fetch, parse, page upsert, link enqueue and acknowledgement is in it.

Run:  PYTHONPATH=src:. .venv/bin/python bench/crawl_pages.py [--append]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.__main__ import ensure_wrk, paths_script, wrk_run
from bench.crawl_site import site_process
from shopkeeper.core.db import Database
from shopkeeper.core.migrate import upgrade_database
from shopkeeper.core.settings import Settings
from shopkeeper.crawl import service
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.models import Crawl, Worker
from shopkeeper.crawl.schemas import CrawlCreate

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
POSTGRES = os.environ.get("BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass
class Run:
    name: str
    pages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.pages / self.seconds


def settings_for(database_url: str, frontier: Literal["sql", "redis"], tmp: Path) -> Settings:
    return Settings(
        environment="test",
        database_url=database_url,
        var_dir=tmp,
        secret_key="bench-secret-" + "x" * 40,
        sandbox_webhook_secret="bench",
        log_level="WARNING",
        crawl_frontier=frontier,
        redis_url=REDIS,
        redis_namespace=f"bench-{secrets.token_hex(4)}",
        crawl_allow_private=True,
        database_pool_size=20,
    )


def worker_env(settings: Settings, concurrency: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    for name in (
        "environment",
        "database_url",
        "var_dir",
        "crawl_frontier",
        "redis_url",
        "redis_namespace",
        "database_pool_size",
        "log_level",
    ):
        env[f"SHOPKEEPER_{name.upper()}"] = str(getattr(settings, name))
    env["SHOPKEEPER_SECRET_KEY"] = "bench-secret-" + "x" * 40
    env["SHOPKEEPER_CRAWL_ALLOW_PRIVATE"] = "true"
    env["SHOPKEEPER_CRAWL_WORKER_CONCURRENCY"] = str(concurrency)
    return env


async def crawl_run(
    name: str, frontier: str, base: str, pages: int, workers: int, concurrency: int, tmp: Path
) -> Run:
    database = f"shopkeeper_bench_crawl_{secrets.token_hex(3)}"
    admin = create_async_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{database}"'))
    settings = settings_for(f"{POSTGRES}/{database}", frontier, tmp)
    db = Database(settings)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        await upgrade_database(db)
        env = worker_env(settings, concurrency)
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "shopkeeper.cli", "crawl", "worker", "--name", f"b{n}"],
                env=env,
                start_new_session=True,
            )
            for n in range(workers)
        ]
        async with db.session() as session:
            while (await session.scalar(select(func.count()).select_from(Worker))) < workers:
                await asyncio.sleep(0.1)
        context = CrawlContext.build(settings, db)
        body = CrawlCreate.model_validate(
            {
                "name": name,
                "seeds": [f"{base}/"],
                "scope": {"allow": [base.removeprefix("http://")]},
                "politeness": {"delay_ms": 0, "max_inflight_per_host": 1000},
            }
        )
        started = time.monotonic()
        view = await service.create_crawl(context, body=body)
        while True:
            async with db.session() as session:
                status = await session.scalar(select(Crawl.status).where(Crawl.id == view.crawl.id))
            if status == "finished":
                break
            await asyncio.sleep(0.02)
        elapsed = time.monotonic() - started
        stats = (await service.get_crawl(context, crawl_id=view.crawl.id)).stats
        await context.close()
        # "/" and "/b/0" are the same page under two URLs.
        pages += 1
        if stats["fetched"] != pages:
            raise RuntimeError(f"{name}: {stats}")
        print(f"-> {name}: {pages} pages in {elapsed:.2f} s = {pages / elapsed:,.0f} pages/s")
        return Run(name, pages, elapsed)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
        await db.dispose()
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        await admin.dispose()


def scrapy_bench(seconds: int) -> float:
    """`scrapy bench`: Scrapy's own local server and link-following spider, pages per second."""
    scrapy = Path(sys.executable).with_name("scrapy")
    output = subprocess.run(
        [str(scrapy), "bench", "-s", f"CLOSESPIDER_TIMEOUT={seconds}", "-s", "LOG_LEVEL=INFO"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
    ).stderr
    count = re.search(r"'response_received_count': (\d+)", output)
    elapsed = re.search(r"'elapsed_time_seconds': ([\d.]+)", output)
    if count is None or elapsed is None:
        raise RuntimeError("scrapy bench printed no stats:\n" + output[-2000:])
    return int(count.group(1)) / float(elapsed.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument("--duration", type=int, default=8, help="wrk / scrapy seconds")
    parser.add_argument("--append", action="store_true", help="append the figures to RESULTS.md")
    args = parser.parse_args()
    wrk = ensure_wrk()
    load_before = os.getloadavg()
    runs: list[Run] = []
    with (
        site_process(bench_pages=args.pages) as bases,
        tempfile.TemporaryDirectory() as folder,
    ):
        tmp = Path(folder)
        base = bases["bench"]
        script = paths_script(tmp, "bench", [f"/b/{i}" for i in range(args.pages)])
        site = wrk_run(wrk, "site alone (wrk)", base, script, 2, args.connections, args.duration)
        for name, frontier in (("PostgreSQL, SQL frontier", "sql"), ("Redis frontier", "redis")):
            runs.append(
                asyncio.run(
                    crawl_run(name, frontier, base, args.pages, args.workers, args.concurrency, tmp)
                )
            )
        scrapy = scrapy_bench(args.duration)
        print(f"-> scrapy bench: {scrapy:,.0f} pages/s")
        site_again = wrk_run(
            wrk, "site alone (wrk, again)", base, script, 2, args.connections, args.duration
        )
    load_after = os.getloadavg()
    lines = [
        f"## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC — crawl: pages fetched, parsed and stored",
        "",
        f"- machine: {platform.node()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; 1-minute load before / after: "
        f"{load_before[0]:.1f} / {load_after[0]:.1f}",
        f"- command: `PYTHONPATH=src:. python bench/crawl_pages.py --pages {args.pages} "
        f"--workers {args.workers} --concurrency {args.concurrency} "
        f"--connections {args.connections} --duration {args.duration}`",
        f"- {args.workers} `shopkeeper crawl worker` processes x {args.concurrency} fetches; "
        f"one crawl of the site's {args.pages} pages (20 links each) from '/', delay 0, "
        "1000 in flight per host, robots.txt obeyed; PostgreSQL on TCP 127.0.0.1:5432, Redis "
        "on 127.0.0.1:6379; site, workers, databases and wrk share the same CPUs",
        "- time: from the crawl's creation to its `finished` status (every page stored, every "
        "link queued and deduplicated, every lease acknowledged)",
        "",
        "| measurement | pages/s | vs site alone |",
        "|---|---:|---:|",
        f"| site alone, wrk {args.connections} connections (first) | {site.rps:,.0f} | |",
    ]
    best = max(site.rps, site_again.rps)
    for run in runs:
        lines.append(
            f"| crawl, {run.name}: {run.pages} pages in {run.seconds:.2f} s "
            f"| {run.rate:,.0f} | {run.rate / best:.0%} |"
        )
    lines += [
        f"| `scrapy bench` ({args.duration} s, its own server and spider) | {scrapy:,.0f} "
        f"| {scrapy / best:.0%} |",
        f"| site alone, wrk (last) | {site_again.rps:,.0f} | |",
        "",
    ]
    text_block = "\n".join(lines)
    print("\n" + text_block)
    if args.append:
        existing = RESULTS.read_text()
        RESULTS.write_text(existing.rstrip("\n") + "\n\n" + text_block)


if __name__ == "__main__":
    main()
