"""canonical + scope + robots + fetch + extract, driven by a plain breadth-first loop (no
frontier, no database) against the site: what the site sees is what these pieces decide."""

from __future__ import annotations

from collections import deque

from shopkeeper.crawl.canonical import InvalidURL, new_url
from shopkeeper.crawl.extract import extract
from shopkeeper.crawl.fetch import Fetcher
from shopkeeper.crawl.politeness import RobotsDeny, robots_entry, robots_verdict
from shopkeeper.crawl.scope import Scope
from tests.support.crawl_site import CrawlSite

UA = "shopkeeper-crawler/1.0 (+test)"


async def crawl(site: CrawlSite, seeds: list[str], scope: Scope) -> list[str]:
    """Fetched canonical URLs, in order; robots.txt obeyed, links deduplicated."""
    fetched: list[str] = []
    async with Fetcher(user_agent=UA, allow_private=True) as fetcher:
        host = site.authority("shop")
        robots = robots_entry(
            host, await fetcher.fetch_robots(host), user_agent=UA, now=0.0, previous=None
        )
        queue = deque(new_url(seed, 0) for seed in seeds)
        seen = {parts.fingerprint for parts in queue}
        while queue:
            parts = queue.popleft()
            if isinstance(robots_verdict(robots, parts.url, UA, now=0.0), RobotsDeny):
                continue
            result = await fetcher.fetch(parts.url, scope=scope, follow_redirects=False)
            fetched.append(parts.url)
            links = [result.location] if result.location else []
            if result.is_html:
                links += extract(result.body, base_url=result.final_url).links
            for link in links:
                depth = parts.depth if link == result.location else parts.depth + 1
                try:
                    found = new_url(link, depth)
                except InvalidURL:
                    continue
                if found.fingerprint not in seen and scope.admits(found.url, depth):
                    seen.add(found.fingerprint)
                    queue.append(found)
    return fetched


async def test_calendar_trap_stops_at_max_depth(crawl_site: CrawlSite) -> None:
    scope = Scope.from_rules(allow=[crawl_site.authority("shop")], max_depth=5)
    await crawl(crawl_site, [crawl_site.url("shop", "/calendar/2026/06")], scope)
    months = sorted(r.path for r in crawl_site.requests("shop") if r.path != "/robots.txt")
    # Five steps either way from June 2026: January 2026 to November 2026, each once.
    assert months == [f"/calendar/2026/{m:02d}" for m in range(1, 12)]


async def test_calendar_trap_stopped_by_a_deny_rule(crawl_site: CrawlSite) -> None:
    scope = Scope.from_rules(allow=[crawl_site.authority("shop")], deny=[r"^/calendar/\d+/"])
    fetched = await crawl(crawl_site, [crawl_site.url("shop", "/")], scope)
    assert not any("/calendar/" in url for url in fetched)
    assert not any("/calendar/" in r.path for r in crawl_site.requests("shop"))


async def test_shop_each_page_once_robots_obeyed(crawl_site: CrawlSite) -> None:
    scope = Scope.from_rules(allow=[crawl_site.authority("shop")], deny=["/calendar/"])
    await crawl(crawl_site, [crawl_site.url("shop", "/")], scope)
    paths = [r.path for r in crawl_site.requests("shop")]
    assert len(paths) == len(set(paths)), "a page was requested twice"
    assert not any("utm_" in p or "gclid" in p or "fbclid" in p for p in paths)
    assert not any(p.startswith(("/private/", "/hidden-from-shopkeeper/")) for p in paths)
    products = {p.path for p in crawl_site.products}
    assert products <= set(paths)
    # The redirect was recorded, its target fetched once (from the listing or the redirect).
    assert "/old/product/2" in paths and paths.count("/product/2") == 1
    assert {r.user_agent for r in crawl_site.requests("shop")} == {UA}
