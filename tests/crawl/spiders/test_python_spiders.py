"""A `python` spider named in the spiders file, run by a crawl worker in this process on the
local test site: `start` queues, the worker calls `parse` on each page, items are the job's."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from tests.crawl.domain.support import worker_running
from tests.crawl.scheduling import spiders_toml, wait_for_job
from tests.support.crawl_site import PRODUCTS, CrawlSite

API = "/api/v1/crawl"


async def test_a_python_spider_crawls_with_parse_and_yields_items(
    app: FastAPI, client: httpx.AsyncClient, crawl_site: CrawlSite, spiders_file: Path
) -> None:
    spiders_file.write_text(
        spiders_toml(
            shop=f"""kind = "python"
entry_point = "tests.crawl.spiders.shop_spider:ShopSpider"
scope = {{allow = ["{crawl_site.authority("shop")}"]}}
"""
        )
    )
    listed = {s["name"]: s for s in (await client.get(f"{API}/spiders")).json()}
    assert listed["shop"] == {
        "name": "shop",
        "kind": "python",
        "description": "Products of the test shop",
    }
    job = (
        await client.post(
            f"{API}/spiders/shop/run", json={"args": {"start": crawl_site.url("shop", "/products")}}
        )
    ).json()
    async with worker_running(app, name="w"):
        job = await wait_for_job(
            client, job["id"], lambda j: j["status"] not in {"queued", "running"}
        )
    assert job["status"] == "succeeded", job
    assert job["crawl_id"] is not None
    assert job["stats"]["items"] == len(PRODUCTS)
    assert job["stats"]["crawl"]["fetched"] == job["stats"]["crawl"]["seen"] > len(PRODUCTS)

    items = (await client.get(f"{API}/jobs/{job['id']}/items", params={"limit": 100})).json()
    by_url = {item["data"]["url"]: item["data"] for item in items["items"]}
    assert set(by_url) == {crawl_site.url("shop", p.path) for p in PRODUCTS}
    assert len(items["items"]) == len(PRODUCTS)
    assert all(item["title"] for item in by_url.values())

    # The pages are the job's crawl's, like any crawl's; what parse did not ask for (the home
    # page, the calendar trap) was never requested.
    crawl = (await client.get(f"{API}/crawls/{job['crawl_id']}")).json()
    assert crawl["status"] == "finished"
    requested = {r.path for r in crawl_site.requests("shop")} - {"/robots.txt"}
    assert {p.path for p in PRODUCTS} <= requested
    assert not any(path == "/" or path.startswith("/calendar") for path in requested)
