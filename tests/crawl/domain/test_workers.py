"""Three `shopkeeper crawl worker` processes against the local site: politeness, robots.txt,
Retry-After and a SIGKILLed worker, all counted by the site, never by the crawler."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, settings_env
from tests.crawl.domain.support import all_pages, gaps_by_host, wait_for_status
from tests.support.crawl_site import SiteRequest
from tests.support.crawl_site_remote import RemoteCrawlSite

# The site's clock and the workers' timers round to the millisecond or so.
CLOCK_SLACK_S = 0.002
WORKER_CONCURRENCY = 8
BIG_INFLIGHT = 12
"""The `big` crawl's in-flight limit per host, above the killed worker's concurrency."""


def start_workers(
    process_factory: Callable[..., ServerProcess], settings: Settings, count: int = 3, **env: str
) -> list[ServerProcess]:
    """Each worker names itself in its user agent, so the site can tell who asked for what."""
    return [
        process_factory(
            ["crawl", "worker", "--name", f"w{n}", "--concurrency", str(WORKER_CONCURRENCY)],
            settings_env(settings, SHOPKEEPER_CRAWL_USER_AGENT=agent(f"w{n}"), **env),
        )
        for n in range(count)
    ]


def agent(name: str) -> str:
    return f"shopkeeper-crawler/1.0 (test worker {name})"


def at(request: SiteRequest) -> float:
    return request.at


def stop_workers(workers: list[ServerProcess]) -> None:
    """SIGTERM to all at once (each drains in its own time), then wait for each."""
    for worker in workers:
        if worker.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(worker.process.pid, signal.SIGTERM)
    for worker in workers:
        worker.stop()


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await client.post("/api/v1/crawl/crawls", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def chain_crawl(site: RemoteCrawlSite, role: str, delay_ms: int, inflight: int) -> dict[str, Any]:
    return {
        "name": role,
        "seeds": [site.url(role, "/")],
        "scope": {"allow": [site.authority(role)]},
        "politeness": {"delay_ms": delay_ms, "max_inflight_per_host": inflight},
    }


async def test_three_workers_keep_every_hosts_delay_and_inflight_limit(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
    remote_site: RemoteCrawlSite,
) -> None:
    site = remote_site
    site.set(slow_delay_s=0.3)
    spaced = await create(client, chain_crawl(site, "robots404", 150, 4))
    parallel = await create(client, chain_crawl(site, "slow", 0, 2))
    shop = await create(
        client,
        {
            "name": "shop",
            "seeds": [site.url("shop", "/")],
            "scope": {"allow": [site.authority("shop")], "deny": ["/calendar/"]},
            "politeness": {"delay_ms": 50, "max_inflight_per_host": 1},
        },
    )
    workers = start_workers(process_factory, settings)
    for crawl_id in (spaced, parallel, shop):
        await wait_for_status(client, crawl_id, {"finished"}, timeout=60)
    listed = (await client.get("/api/v1/crawl/workers")).json()
    stop_workers(workers)

    spaced_gaps = gaps_by_host(site.requests("robots404"))
    (gaps,) = spaced_gaps.values()
    assert len(gaps) >= 9  # robots.txt and ten pages
    assert min(gaps) >= 0.150 - CLOCK_SLACK_S, [
        (r.path, round(r.at, 4), r.client) for r in site.requests("robots404")
    ]
    slow = site.requests("slow")
    assert len(slow) == 11
    assert max(request.in_flight for request in slow) <= 2
    shop_requests = site.requests("shop")
    assert min(gaps_by_host(shop_requests)[site.authority("shop")]) >= 0.05 - CLOCK_SLACK_S
    assert max(request.in_flight for request in shop_requests) == 1
    paths = [request.path for request in shop_requests]
    assert not [path for path in paths if path.startswith(("/private/", "/hidden-from"))]
    assert Counter(paths).most_common(1)[0][1] == 1

    assert sorted(worker["name"] for worker in listed) == ["w0", "w1", "w2"]
    assert {worker["state"] for worker in listed} == {"alive"}
    assert (await client.get("/api/v1/crawl/workers")).json() == []  # drained and gone


async def test_nothing_is_fetched_from_a_host_whose_robots_txt_answers_503_until_it_recovers(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
    remote_site: RemoteCrawlSite,
) -> None:
    site = remote_site
    crawl_id = await create(client, chain_crawl(site, "robots503", 0, 2))
    workers = start_workers(process_factory, settings)
    deadline = time.monotonic() + 30
    while len(site.requests("robots503")) < 2:  # asked, and asked again after a backoff
        assert time.monotonic() < deadline, site.requests("robots503")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    before = site.requests("robots503")
    assert before and {request.path for request in before} == {"/robots.txt"}
    hosts = (await client.get(f"/api/v1/crawl/crawls/{crawl_id}/hosts")).json()
    assert hosts[0]["backoff_until"] is not None and "503" in hosts[0]["reason"]
    assert hosts[0]["robots"]["status"] == 503

    site.recover("robots503")
    await wait_for_status(client, crawl_id, {"finished"}, timeout=60)
    stop_workers(workers)
    pages = [r for r in site.requests("robots503") if r.path != "/robots.txt"]
    assert len(pages) == 10  # and none before the recovery: `before` held robots.txt only


async def test_no_request_reaches_a_host_inside_its_retry_after_window(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
    remote_site: RemoteCrawlSite,
) -> None:
    site = remote_site
    site.set(throttle_retry_after="1")
    body = chain_crawl(site, "throttle", 0, 1)
    body["scope"]["max_pages"] = 4
    crawl_id = await create(client, body)
    workers = start_workers(process_factory, settings)
    await wait_for_status(client, crawl_id, {"finished"}, timeout=60)
    stop_workers(workers)

    requests = sorted(site.requests("throttle"), key=lambda request: request.at)
    seen: set[str] = set()
    throttled_at = []
    for request in requests:
        if request.path != "/robots.txt" and request.path not in seen:
            seen.add(request.path)
            throttled_at.append(request.at)  # the first request of each page answers 429
    assert len(throttled_at) == 4  # max_pages
    for at in throttled_at:
        inside = [r for r in requests if at < r.at < at + 1.0 - CLOCK_SLACK_S]
        assert inside == [], (at, inside)
    pages = await all_pages(client, crawl_id)
    assert {page["state"] for page in pages} == {"fetched"}
    assert {page["attempts"] for page in pages} == {1}  # a 429 spends no attempt


async def test_every_url_is_stored_once_after_a_worker_is_killed_mid_crawl(
    client: httpx.AsyncClient,
    settings: Settings,
    process_factory: Callable[..., ServerProcess],
    remote_site: RemoteCrawlSite,
) -> None:
    site = remote_site
    assert site.big_pages == 2000
    crawl_id = await create(client, chain_crawl(site, "big", 0, BIG_INFLIGHT))
    workers = start_workers(process_factory, settings)
    deadline = time.monotonic() + 60
    while len(site.requests("big")) < 600:
        assert time.monotonic() < deadline, "the crawl did not get going"
        await asyncio.sleep(0.05)
    workers[0].stop(signal.SIGKILL)
    killed_at = time.monotonic()
    crawl = await wait_for_status(client, crawl_id, {"finished"}, timeout=90)
    while time.monotonic() < killed_at + 2.0:  # three heartbeats of 0.5 s missed
        await asyncio.sleep(0.1)
    states = {w["name"]: w["state"] for w in (await client.get("/api/v1/crawl/workers")).json()}
    # (the live ones' state is not asserted: on a loaded machine a beat can come late)
    assert set(states) == {"w0", "w1", "w2"} and states["w0"] == "lost"
    stop_workers(workers[1:])

    assert crawl["stats"]["fetched"] == 2000
    assert crawl["stats"]["seen"] == 2000 and crawl["stats"]["dead"] == 0
    pages = await all_pages(client, crawl_id)
    assert len(pages) == 2000
    assert len({page["url"] for page in pages}) == 2000
    assert {page["state"] for page in pages} == {"fetched"}

    requested = Counter(r.path for r in site.requests("big") if r.path != "/robots.txt")
    assert set(requested) == {"/"} | {f"/p/{n}" for n in range(1, 2000)}
    # Only the killed worker's unacknowledged URLs can have been asked for twice: first by it,
    # then once by a live worker after its leases expired. A worker holds a lease until its
    # group commit acknowledges the URL, so besides its fetches in flight (at most its
    # concurrency) it can hold fetched pages waiting for a flush; the frontier leases no more
    # than the host's in-flight limit of URLs at once, whoever holds them. So that limit, not
    # the concurrency, bounds the repeats.
    twice = {path for path, count in requested.items() if count > 1}
    assert max(requested.values()) <= 2
    assert len(twice) <= BIG_INFLIGHT
    for path in twice:
        first, again = sorted((r for r in site.requests("big") if r.path == path), key=at)
        assert first.user_agent == agent("w0") and first.at < killed_at, (path, first)
        assert again.user_agent != agent("w0") and again.at > killed_at, (path, again)

    exported = await client.get(f"/api/v1/crawl/crawls/{crawl_id}/export")
    urls = [line.split('"url":"', 1)[1].split('"', 1)[0] for line in exported.text.splitlines()]
    assert len(urls) == 2000 and len(set(urls)) == 2000
