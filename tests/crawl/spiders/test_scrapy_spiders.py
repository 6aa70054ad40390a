"""A `scrapy` spider: the unchanged Scrapy project of tests/crawl/scrapy_project, named in the
spiders file and run by a crawl worker as a job (`scrapy crawl chain` with our scheduler)."""

from __future__ import annotations

import signal
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, settings_env
from tests.crawl.scheduling import spiders_toml, wait_for_job
from tests.support.crawl_site_remote import RemoteCrawlSite

API = "/api/v1/crawl"
PROJECT = Path(__file__).resolve().parent.parent / "scrapy_project"
PAGES = {"/", *(f"/c/{n}" for n in range(1, 10))}


async def test_a_scrapy_spider_runs_as_a_job_on_the_frontier(
    client: httpx.AsyncClient,
    settings: Settings,
    spiders_file: Path,
    process_factory: Callable[..., ServerProcess],
    remote_site: RemoteCrawlSite,
) -> None:
    site = remote_site
    spiders_file.write_text(
        spiders_toml(
            chainbot=f"""kind = "scrapy"
description = "The chain spider of an ordinary Scrapy project"
project = "{PROJECT}"
spider = "chain"
python = "{sys.executable}"
settings = {{SHOPKEEPER_DELAY_MS = 200}}
"""
        )
    )
    listed = (await client.get(f"{API}/spiders")).json()
    assert "chainbot" in str(listed)
    worker = process_factory(["crawl", "worker", "--name", "w0"], settings_env(settings))
    job = (
        await client.post(
            f"{API}/spiders/chainbot/run", json={"args": {"start": site.url("robots404", "/")}}
        )
    ).json()
    job = await wait_for_job(
        client, job["id"], lambda j: j["status"] not in {"queued", "running"}, timeout=120
    )
    worker.stop(signal.SIGTERM)

    assert job["status"] == "succeeded", (job, worker.log_path.read_text()[-3000:])
    requests = [r for r in site.requests("robots404") if r.user_agent.startswith("chainbot")]
    assert Counter(r.path for r in requests) == Counter(PAGES)
