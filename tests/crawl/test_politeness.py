"""robots.txt rules against the local site, the shared robots cache on both databases,
Retry-After, backoff, and the decision taken after each fetch."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.fetch import Fetcher, FetchError, FetchResult
from shopkeeper.crawl.politeness import (
    Complete,
    PauseHost,
    Retry,
    RobotsAllow,
    RobotsCache,
    RobotsDeny,
    RobotsEntry,
    RobotsSkipHost,
    RobotsUnavailable,
    backoff_s,
    decide,
    parse_retry_after,
    product_token,
    robots_entry,
    robots_verdict,
)
from tests.support.crawl_site import CrawlSite, http_date

UA = "shopkeeper-crawler/1.0 (+https://example.test/bot)"
NOW = 1_800_000_000.0


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(user_agent=UA, allow_private=True, timeout_s=0.3) as client:
        yield client


async def robots_of(
    fetcher: Fetcher, site: CrawlSite, role: str, previous: RobotsEntry | None = None
) -> RobotsEntry:
    host = site.authority(role)
    result = await fetcher.fetch_robots(host)
    return robots_entry(
        host, result, user_agent=UA, now=NOW, previous=previous, rng=random.Random(1)
    )


def test_product_token() -> None:
    assert product_token(UA) == "shopkeeper-crawler"
    assert product_token("Googlebot") == "Googlebot"


async def test_rules_of_our_group_apply(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    entry = await robots_of(fetcher, crawl_site, "shop")
    base = crawl_site.base("shop")
    assert entry.usable and entry.status == 200 and entry.crawl_delay_ms is None
    assert entry.expires_at == NOW + 24 * 3600
    assert robots_verdict(entry, f"{base}/product/1", UA, now=NOW) == RobotsAllow(None)
    assert robots_verdict(entry, f"{base}/private/a", UA, now=NOW) == RobotsDeny()
    # Only our group disallows this one; another crawler falls in the `*` group.
    hidden = f"{base}/hidden-from-shopkeeper/page"
    assert robots_verdict(entry, hidden, UA, now=NOW) == RobotsDeny()
    assert entry.allows(hidden, "someotherbot/2.0")
    assert not entry.allows(f"{base}/product/1", "otherbot/1.0")
    [request] = crawl_site.requests("shop")
    assert (request.path, request.user_agent) == ("/robots.txt", UA)


async def test_crawl_delay(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    crawl_site.shop_crawl_delay = 1.5
    entry = await robots_of(fetcher, crawl_site, "shop")
    url = crawl_site.url("shop", "/product/1")
    assert entry.crawl_delay_ms == 1500
    assert robots_verdict(entry, url, UA, now=NOW) == RobotsAllow(delay_ms=1500)


async def test_crawl_delay_over_30_s_skips_the_host(
    fetcher: Fetcher, crawl_site: CrawlSite
) -> None:
    crawl_site.shop_crawl_delay = 45
    entry = await robots_of(fetcher, crawl_site, "shop")
    verdict = robots_verdict(entry, crawl_site.url("shop", "/product/1"), UA, now=NOW)
    assert isinstance(verdict, RobotsSkipHost)
    assert "crawl-delay over 30 s" in verdict.reason and "45 s" in verdict.reason


async def test_robots_404_allows_everything(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    entry = await robots_of(fetcher, crawl_site, "robots404")
    assert entry.usable and entry.status == 404
    url = crawl_site.url("robots404", "/private/anything")
    assert robots_verdict(entry, url, UA, now=NOW) == RobotsAllow(None)


async def test_robots_other_4xx_allow_everything(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    crawl_site.robots_override["shop"] = (403, b"forbidden")
    entry = await robots_of(fetcher, crawl_site, "shop")
    assert entry.usable
    assert entry.allows(crawl_site.url("shop", "/private/a"), UA)


async def test_robots_503_pauses_the_host_until_it_answers(
    fetcher: Fetcher, crawl_site: CrawlSite
) -> None:
    url = crawl_site.url("robots503", "/c/1")
    first = await robots_of(fetcher, crawl_site, "robots503")
    assert not first.usable and first.failures == 1 and not first.allows(url, UA)
    verdict = robots_verdict(first, url, UA, now=NOW)
    assert isinstance(verdict, RobotsUnavailable)
    assert verdict.reason == "robots.txt 503"
    assert NOW + 0.5 <= verdict.until <= NOW + 1.0
    second = await robots_of(fetcher, crawl_site, "robots503", previous=first)
    assert second.failures == 2
    assert NOW + 1.0 <= second.expires_at <= NOW + 2.0
    crawl_site.recover("robots503")
    recovered = await robots_of(fetcher, crawl_site, "robots503", previous=second)
    assert recovered.usable and recovered.failures == 0
    assert robots_verdict(recovered, url, UA, now=NOW) == RobotsAllow(None)
    assert [r.path for r in crawl_site.requests("robots503")] == ["/robots.txt"] * 3


async def test_robots_time_out_pauses_the_host(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    entry = await robots_of(fetcher, crawl_site, "robots_timeout")
    assert not entry.usable and entry.status is None
    assert entry.error == "robots.txt timeout"
    verdict = robots_verdict(entry, crawl_site.url("robots_timeout", "/"), UA, now=NOW)
    assert isinstance(verdict, RobotsUnavailable)
    crawl_site.recover("robots_timeout")
    assert (await robots_of(fetcher, crawl_site, "robots_timeout", previous=entry)).usable


def test_robots_429_and_503_honour_retry_after() -> None:
    answer = FetchResult(
        url="http://h/robots.txt",
        final_url="http://h/robots.txt",
        status=429,
        headers={"retry-after": "120"},
    )
    entry = robots_entry("h:80", answer, user_agent=UA, now=NOW)
    assert entry.expires_at == NOW + 120 and entry.error == "robots.txt 429"


async def test_cache_is_shared_through_the_database(runtime: Runtime) -> None:
    writer, reader = RobotsCache(runtime.db), RobotsCache(runtime.db)
    entry = RobotsEntry(
        host="127.0.0.2:8080",
        status=200,
        body="User-agent: *\nDisallow: /x/\n",
        fetched_at=NOW,
        expires_at=NOW + 60,
        crawl_delay_ms=500,
        failures=0,
        error=None,
    )
    assert await reader.get(entry.host, now=NOW) is None
    await writer.put(entry)
    assert await reader.get(entry.host, now=NOW + 1) == entry
    assert await reader.get(entry.host, now=NOW + 61) is None
    assert await reader.latest(entry.host) == entry
    failed = RobotsEntry(
        host=entry.host,
        status=503,
        body="",
        fetched_at=NOW + 70,
        expires_at=NOW + 72,
        crawl_delay_ms=None,
        failures=1,
        error="robots.txt 503",
    )
    await writer.put(failed)
    assert await reader.get(entry.host, now=NOW + 71) == failed
    assert await RobotsCache(runtime.db).many([entry.host, "other:80"]) == {entry.host: failed}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("30", 30.0),
        ("0", 0.0),
        ("86400", 3600.0),
        (http_date(NOW + 90), 90.0),
        (http_date(NOW - 90), 0.0),
        (http_date(NOW + 7200), 3600.0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_backoff_grows_jitters_and_is_capped() -> None:
    rng = random.Random(7)
    for attempts, ceiling in [(0, 2.0), (1, 4.0), (3, 16.0), (20, 300.0)]:
        draws = {backoff_s(attempts, rng=rng) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in draws)
        assert len(draws) > 1


def page(status: int | None, error: FetchError | None = None, **headers: str) -> FetchResult:
    url = "http://h/p"
    return FetchResult(
        url=url, final_url=url, status=status, headers=headers, error=error, detail="x"
    )


@pytest.mark.parametrize(
    ("outcome", "expected_state"),
    [
        (page(200), "fetched"),
        (page(301, location="/q"), "fetched"),
        (page(404), "failed"),
        (page(410), "failed"),
        (page(403), "failed"),
        (page(None, FetchError.PRIVATE_ADDRESS), "failed"),
        (page(None, FetchError.TOO_LARGE), "failed"),
        (page(302, FetchError.REDIRECT_OUT_OF_SCOPE), "failed"),
    ],
)
def test_final_outcomes(outcome: FetchResult, expected_state: str) -> None:
    decision = decide(outcome, attempts=0, max_attempts=3, now=NOW)
    assert isinstance(decision, Complete) and decision.state == expected_state


@pytest.mark.parametrize(
    "outcome",
    [
        page(500),
        page(502),
        page(503),
        page(408),
        page(None, FetchError.TIMEOUT),
        page(None, FetchError.CONNECTION),
    ],
)
def test_retryable_outcomes_spend_attempts_then_die(outcome: FetchResult) -> None:
    first = decide(outcome, attempts=0, max_attempts=3, now=NOW, rng=random.Random(1))
    assert isinstance(first, Retry) and first.spend_attempt
    assert NOW + 1 <= first.not_before <= NOW + 2
    second = decide(outcome, attempts=1, max_attempts=3, now=NOW, rng=random.Random(1))
    assert isinstance(second, Retry) and NOW + 2 <= second.not_before <= NOW + 4
    last = decide(outcome, attempts=2, max_attempts=3, now=NOW)
    assert isinstance(last, Complete) and last.state == "dead" and last.error


def test_429_pauses_the_host_without_spending_an_attempt() -> None:
    decision = decide(page(429, **{"retry-after": "30"}), attempts=2, max_attempts=3, now=NOW)
    assert decision == PauseHost(until=NOW + 30, reason="HTTP 429, retry after 30 s")
    dated = decide(page(503, **{"retry-after": http_date(NOW + 60)}), 0, 3, now=NOW)
    assert dated == PauseHost(until=NOW + 60, reason="HTTP 503, retry after 60 s")
    capped = decide(page(429, **{"retry-after": "999999"}), 0, 3, now=NOW)
    assert isinstance(capped, PauseHost) and capped.until == NOW + 3600
    bare = decide(page(429), 0, 3, now=NOW)
    assert bare == PauseHost(until=NOW + 60, reason="HTTP 429, retry after 60 s")
