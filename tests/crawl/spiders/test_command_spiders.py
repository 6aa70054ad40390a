"""A `command` spider (a program talking to a real `shopkeeper serve` over HTTP with its job's
token) crawls the local site while a native crawl fetches the same host: both go through the
shared frontier, and the site sees one politeness for the host."""

from __future__ import annotations

import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, settings_env
from tests.crawl.domain.support import all_pages, gaps_by_host, wait_for_status
from tests.crawl.scheduling import SPIDERS_DIR, spiders_toml, wait_for_job
from tests.support.crawl_site_remote import RemoteCrawlSite

API = "/api/v1/crawl"
DELAY_MS = 250
CLOCK_SLACK_S = 0.002


async def test_a_command_spider_and_a_native_crawl_share_the_hosts_politeness(
    client: httpx.AsyncClient,
    settings: Settings,
    spiders_file: Path,
    process_factory: Callable[..., ServerProcess],
    server_factory: Callable[..., Any],
    remote_site: RemoteCrawlSite,
) -> None:
    site = remote_site
    host = site.authority("big")
    spiders_file.write_text(
        spiders_toml(
            walker=f"""kind = "command"
description = "Queues args.urls through the API, stores a title per page"
command = ["{sys.executable}", "{SPIDERS_DIR / "api_walker.py"}"]
scope = {{allow = ["{host}"]}}
politeness = {{delay_ms = {DELAY_MS}}}
"""
        )
    )
    base = await server_factory(settings)
    env = settings_env(settings, SHOPKEEPER_CRAWL_API_URL=f"{base}/api/v1")
    workers = [
        process_factory(["crawl", "worker", "--name", f"w{n}", "--concurrency", "4"], env)
        for n in range(2)
    ]
    spider_paths = [f"/p/{n}" for n in range(1500, 1520)]
    job = (
        await client.post(
            f"{API}/spiders/walker/run",
            json={"args": {"urls": [site.url("big", path) for path in spider_paths]}},
        )
    ).json()
    crawl = await client.post(
        f"{API}/crawls",
        json={
            "name": "native",
            "seeds": [site.url("big", "/")],
            "scope": {"allow": [host], "max_pages": 20},
            "politeness": {"delay_ms": DELAY_MS, "max_inflight_per_host": 1},
        },
    )
    assert crawl.status_code == 201, crawl.text
    native = await wait_for_status(client, crawl.json()["id"], {"finished"}, timeout=120)
    job = await wait_for_job(
        client, job["id"], lambda j: j["status"] not in {"queued", "running"}, timeout=120
    )
    for worker in workers:
        worker.stop(signal.SIGTERM)

    assert job["status"] == "succeeded", (job, workers[0].log_path.read_text()[-3000:])
    assert job["stats"]["fetched"] == 20 and job["stats"]["crawl"]["fetched"] == 20
    items = (await client.get(f"{API}/jobs/{job['id']}/items", params={"limit": 100})).json()
    assert sorted(i["data"]["url"] for i in items["items"]) == sorted(
        site.url("big", path) for path in spider_paths
    )
    assert native["stats"]["fetched"] == 20
    assert len(await all_pages(client, job["crawl_id"])) == 20

    requests = [r for r in site.requests("big") if r.path != "/robots.txt"]
    counted = Counter(r.path for r in requests)
    assert all(counted[path] == 1 for path in spider_paths)
    assert len(requests) == 40
    # The two crawled at the same time ...
    spider_at = [r.at for r in requests if r.path in spider_paths]
    native_at = [r.at for r in requests if r.path not in spider_paths]
    assert min(spider_at) < max(native_at) and min(native_at) < max(spider_at)
    # ... under one politeness for the host, whichever crawl and worker sent the request.
    gaps = gaps_by_host(requests)[host]
    assert min(gaps) >= DELAY_MS / 1000 - CLOCK_SLACK_S, sorted(gaps)[:5]
    assert max(r.in_flight for r in requests) == 1
