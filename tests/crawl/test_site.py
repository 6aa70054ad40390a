"""The test site itself: what it serves and records (the crawler's tests rely on both)."""

from __future__ import annotations

import asyncio

import httpx

from tests.support.crawl_site import CrawlSite
from tests.support.crawl_site_remote import RemoteCrawlSite


async def test_records_host_path_user_agent_and_concurrency(crawl_site: CrawlSite) -> None:
    async with httpx.AsyncClient(headers={"user-agent": "probe/1"}) as client:
        await asyncio.gather(*(client.get(crawl_site.url("slow", f"/c/{i}")) for i in range(3)))
        await client.get(crawl_site.url("shop", "/product/1?utm_source=x"))
    slow = crawl_site.requests("slow")
    assert sorted(r.path for r in slow) == ["/c/0", "/c/1", "/c/2"]
    assert max(r.in_flight for r in slow) == 3
    assert {r.host for r in slow} == {crawl_site.authority("slow")}
    [shop] = crawl_site.requests("shop")
    assert shop.path == "/product/1?utm_source=x"
    assert shop.user_agent == "probe/1"


async def test_each_role_is_its_own_loopback_address(crawl_site: CrawlSite) -> None:
    addresses = {crawl_site.authority(role).split(":")[0] for role in crawl_site.addresses}
    assert len(addresses) == len(crawl_site.addresses)
    assert all(address.startswith("127.0.0.") for address in addresses)


async def test_throttle_answers_429_once_per_page(crawl_site: CrawlSite) -> None:
    async with httpx.AsyncClient() as client:
        first = await client.get(crawl_site.url("throttle", "/c/1"))
        second = await client.get(crawl_site.url("throttle", "/c/1"))
    assert first.status_code == 429
    assert first.headers["retry-after"] == "1"
    assert second.status_code == 200


async def test_robots_503_until_recovered(crawl_site: CrawlSite) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(crawl_site.url("robots503", "/robots.txt"))).status_code == 503
        crawl_site.recover("robots503")
        assert (await client.get(crawl_site.url("robots503", "/robots.txt"))).status_code == 200
        assert (await client.get(crawl_site.url("robots404", "/robots.txt"))).status_code == 404


async def test_big_site_is_a_tree_reaching_every_page(crawl_site: CrawlSite) -> None:
    reached = {0}
    frontier = [0]
    while frontier:
        page = frontier.pop()
        children = range(10 * page + 1, min(10 * page + 11, crawl_site.big_pages))
        reached.update(children)
        frontier.extend(children)
    assert reached == set(range(crawl_site.big_pages))
    async with httpx.AsyncClient() as client:
        last = await client.get(crawl_site.url("big", f"/p/{crawl_site.big_pages - 1}"))
        beyond = await client.get(crawl_site.url("big", f"/p/{crawl_site.big_pages}"))
    assert last.status_code == 200
    assert beyond.status_code == 404


async def test_bench_pages_have_twenty_links(crawl_site: CrawlSite) -> None:
    async with httpx.AsyncClient() as client:
        page = await client.get(crawl_site.url("bench", "/b/7"))
    assert page.text.count("<a href=") == 20


async def test_site_in_another_process_reports_its_records() -> None:
    with RemoteCrawlSite(big_pages=50, bench_pages=10, first_address=60) as site:
        async with httpx.AsyncClient(headers={"user-agent": "probe/2"}) as client:
            assert (await client.get(site.url("robots503", "/robots.txt"))).status_code == 503
            site.recover("robots503")
            assert (await client.get(site.url("robots503", "/robots.txt"))).status_code == 200
            site.set(throttle_retry_after="7", throttle_always=True)
            throttled = await client.get(site.url("throttle", "/c/1"))
            assert throttled.headers["retry-after"] == "7"
            site.override_robots("shop", 418, b"teapot")
            assert (await client.get(site.url("shop", "/robots.txt"))).status_code == 418
        records = site.requests("robots503")
        assert [(r.path, r.user_agent) for r in records] == [("/robots.txt", "probe/2")] * 2
        assert records[0].at < records[1].at
        assert {r.role for r in site.requests()} == {"robots503", "throttle", "shop"}
        site.reset()
        assert site.requests() == []
