"""An unchanged Scrapy project (tests/crawl/scrapy_project) with one setting, SCHEDULER =
"shopkeeper.crawl.scrapy.Scheduler", crawling a host while a native crawl crawls it too: the
host sees one politeness for both, counted by the site (in its own process)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
from fastapi import FastAPI

from shopkeeper.core.settings import Settings
from tests.conftest import settings_env
from tests.crawl.domain.support import gaps_by_host, wait_for_status, worker_running
from tests.support.crawl_site_remote import RemoteCrawlSite

PROJECT = Path(__file__).resolve().parent.parent / "scrapy_project"
ROOT = Path(__file__).resolve().parents[3]
CLOCK_SLACK_S = 0.002
DELAY_MS = 250
PAGES = {"/", *(f"/c/{n}" for n in range(1, 10))}


def scrapy_crawl(settings: Settings, start: str, out: Path) -> subprocess.Popen[bytes]:
    env = settings_env(settings, PYTHONPATH=f"{ROOT / 'src'}{os.pathsep}{ROOT}")
    command = [
        sys.executable, "-m", "scrapy", "crawl", "chain", "-a", f"start={start}",
        "-s", "SCHEDULER=shopkeeper.crawl.scrapy.Scheduler",
        "-s", f"SHOPKEEPER_DELAY_MS={DELAY_MS}", "-O", f"{out}:jsonlines",
    ]  # fmt: skip
    log = (out.parent / f"{out.stem}.log").open("wb")
    return subprocess.Popen(
        command, cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


async def wait_exit(process: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> int:
    """Without blocking this process's event loop: its in-process worker must go on (on SQLite
    a stalled transaction of it would hold the write lock the Scrapy process waits for)."""
    deadline = time.monotonic() + timeout
    while (code := process.poll()) is None:
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(log.read_text()[-5000:])
        await asyncio.sleep(0.1)
    return code


async def test_scrapy_and_a_native_crawl_share_the_hosts_politeness(
    app: FastAPI,
    client: httpx.AsyncClient,
    settings: Settings,
    remote_site: RemoteCrawlSite,
    tmp_path: Path,
) -> None:
    site = remote_site
    start = site.url("robots404", "/")
    scrapy = scrapy_crawl(settings, start, tmp_path / "items.jsonl")
    native = await client.post(
        "/api/v1/crawl/crawls",
        json={
            "name": "native",
            "seeds": [start],
            "scope": {"allow": [site.authority("robots404")]},
            "politeness": {"delay_ms": DELAY_MS, "max_inflight_per_host": 1},
        },
    )
    assert native.status_code == 201, native.text
    async with worker_running(app):
        await wait_for_status(client, native.json()["id"], {"finished"}, timeout=90)
        assert await wait_exit(scrapy, tmp_path / "items.log") == 0, (
            tmp_path / "items.log"
        ).read_text()[-3000:]

    requests = site.requests("robots404")
    by_scrapy = [r.path for r in requests if r.user_agent.startswith("chainbot")]
    by_native = [r.path for r in requests if r.user_agent.startswith("shopkeeper-crawler")]
    assert sorted(by_scrapy) == sorted(PAGES)  # each page once: the frontier deduplicated
    assert sorted(by_native) == sorted(PAGES | {"/robots.txt"})
    (gaps,) = gaps_by_host(requests).values()
    assert min(gaps) >= DELAY_MS / 1000 - CLOCK_SLACK_S, [
        (r.path, round(r.at, 4), r.user_agent[:10]) for r in requests
    ]
    assert max(r.in_flight for r in requests) == 1
    items = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    assert len(items) == len(PAGES)


async def test_a_killed_scrapy_process_loses_nothing(
    settings: Settings, remote_site: RemoteCrawlSite, tmp_path: Path
) -> None:
    site = remote_site
    start = site.url("robots404", "/")
    first = scrapy_crawl(settings, start, tmp_path / "first.jsonl")
    deadline = time.monotonic() + 60
    while len(site.requests("robots404")) < 3:  # a few pages in, links of them queued
        assert time.monotonic() < deadline and first.poll() is None
        await asyncio.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    killed_at = len(site.requests("robots404"))

    second = scrapy_crawl(settings, start, tmp_path / "second.jsonl")
    assert await wait_exit(second, tmp_path / "second.log") == 0

    fetched = Counter(r.path for r in site.requests("robots404"))
    assert set(fetched) == PAGES  # the second run resumed the crawl: every page fetched
    # Fetched twice at most: what the killed process held when it died (one host slot at a
    # time), and the start URL, which Scrapy sends with `dont_filter` on every run.
    assert max(fetched.values()) <= 2, (killed_at, fetched)
    assert sum(1 for path, n in fetched.items() if n > 1 and path != "/") <= 1, fetched
    items = [
        json.loads(line)["url"]
        for name in ("first.jsonl", "second.jsonl")
        if (tmp_path / name).exists()
        for line in (tmp_path / name).read_text().splitlines()
        if line.strip()
    ]
    assert {url.removeprefix(site.base("robots404")) for url in items} >= PAGES - {
        r.path for r in site.requests("robots404")[:killed_at]
    }
