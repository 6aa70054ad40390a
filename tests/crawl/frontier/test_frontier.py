"""One behavioural suite for every frontier adapter (SQLite, PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import uuid

from shopkeeper.crawl.frontier.base import Frontier, HostPolicy, Lease, NewURL

LEASE_S = 30.0


def url(host: str, n: int, depth: int = 0) -> NewURL:
    # Fingerprints across the whole signed 64-bit range, the extremes included.
    fingerprint = (hash((host, n)) & 0xFFFF_FFFF_FFFF_FFFF) - (1 << 63)
    return NewURL(url=f"http://{host}/p/{n}", fingerprint=fingerprint, host=host, depth=depth)


async def start_crawl(
    frontier: Frontier, hosts: dict[str, HostPolicy], per_host: int = 3
) -> uuid.UUID:
    crawl_id = uuid.uuid4()
    for host, policy in hosts.items():
        await frontier.set_host_policy(crawl_id, host, policy)
    await frontier.set_crawl_active(crawl_id, True)
    await frontier.add(crawl_id, [url(host, n) for host in hosts for n in range(per_host)])
    return crawl_id


async def lease(frontier: Frontier, limit: int = 100, seconds: float = LEASE_S) -> list[Lease]:
    return await frontier.lease(worker="test", limit=limit, lease_seconds=seconds)


OPEN = HostPolicy(delay_ms=0, max_inflight=100)


async def test_add_deduplicates_exactly_per_crawl(frontier: Frontier) -> None:
    crawl_id, other = uuid.uuid4(), uuid.uuid4()
    first = [url("a.test:80", n) for n in range(5)]
    extremes = [
        NewURL("http://a.test/min", -(1 << 63), "a.test:80", 0),
        NewURL("http://a.test/max", (1 << 63) - 1, "a.test:80", 0),
    ]
    assert await frontier.add(crawl_id, first + first[:2] + extremes) == 7
    assert await frontier.add(crawl_id, [*first[3:], url("a.test:80", 9), *extremes]) == 1
    assert await frontier.add(other, first) == 5
    counts = await frontier.counts(crawl_id)
    assert (counts.seen, counts.queued, counts.in_flight, counts.done) == (8, 8, 0, 0)


async def test_inactive_crawls_are_never_leased(frontier: Frontier) -> None:
    crawl_id = uuid.uuid4()
    await frontier.set_host_policy(crawl_id, "b.test:80", OPEN)
    await frontier.add(crawl_id, [url("b.test:80", n) for n in range(3)])
    assert await lease(frontier) == []
    await frontier.set_crawl_active(crawl_id, True)
    assert len(await lease(frontier)) == 3
    await frontier.add(crawl_id, [url("b.test:80", 7)])
    await frontier.set_crawl_active(crawl_id, False)
    assert await lease(frontier) == []


async def test_lease_waits_for_the_hosts_delay(frontier: Frontier) -> None:
    await start_crawl(frontier, {"c.test:80": HostPolicy(delay_ms=300, max_inflight=5)})
    first = await lease(frontier)
    assert len(first) == 1  # one URL per host per call when the host has a delay
    assert await lease(frontier) == []
    await frontier.complete(first)
    assert await lease(frontier) == []  # the slot is taken until the delay has passed
    await asyncio.sleep(0.35)
    second = await lease(frontier)
    assert len(second) == 1
    started = [item.expires_at - LEASE_S for item in first + second]
    assert started[1] - started[0] >= 0.3


async def test_lease_respects_max_inflight(frontier: Frontier) -> None:
    await start_crawl(frontier, {"d.test:80": HostPolicy(delay_ms=0, max_inflight=2)}, 5)
    held = await lease(frontier)
    assert len(held) == 2
    assert await lease(frontier) == []
    assert await frontier.complete(held[:1]) == [True]
    again = await lease(frontier)
    assert len(again) == 1
    hosts = {state.host: state for state in await frontier.hosts(held[0].crawl_id)}
    assert hosts["d.test:80"].in_flight == 2
    assert hosts["d.test:80"].queued == 2


async def test_one_url_per_host_per_call_across_many_hosts(frontier: Frontier) -> None:
    policy = HostPolicy(delay_ms=1000, max_inflight=4)
    await start_crawl(frontier, {f"h{n}.test:80": policy for n in range(6)})
    leased = await lease(frontier, limit=4)
    assert len(leased) == 4
    assert len({item.host for item in leased}) == 4
    rest = await lease(frontier)
    assert len(rest) == 2
    assert {item.host for item in leased}.isdisjoint(item.host for item in rest)


async def test_shared_host_takes_the_strictest_policy_of_active_crawls(frontier: Frontier) -> None:
    host = "e.test:80"
    relaxed = await start_crawl(frontier, {host: HostPolicy(delay_ms=100, max_inflight=3)})
    strict = await start_crawl(frontier, {host: HostPolicy(delay_ms=2000, max_inflight=1)})
    state = (await frontier.hosts(relaxed))[0]
    assert (state.delay_ms, state.max_inflight) == (2000, 1)
    assert len(await lease(frontier)) == 1
    assert await lease(frontier) == []
    await frontier.set_crawl_active(strict, False)
    state = (await frontier.hosts(relaxed))[0]
    assert (state.delay_ms, state.max_inflight) == (100, 3)


async def test_paused_host_is_not_leased_until_the_pause_ends(frontier: Frontier) -> None:
    crawl_id = await start_crawl(frontier, {"f.test:80": OPEN, "g.test:80": OPEN}, 1)
    now = await frontier.now()
    await frontier.pause_host("f.test:80", now + 0.4, "Retry-After 0.4 s")
    await frontier.pause_host("f.test:80", now + 0.1, "shorter pause")  # never shortens
    leased = await lease(frontier)
    assert [item.host for item in leased] == ["g.test:80"]
    paused = {state.host: state for state in await frontier.hosts(crawl_id)}["f.test:80"]
    assert paused.reason == "Retry-After 0.4 s"
    assert paused.paused_until is not None and paused.paused_until >= now + 0.4 - 1e-6
    await asyncio.sleep(0.2)
    assert await lease(frontier) == []
    await asyncio.sleep(0.25)
    assert [item.host for item in await lease(frontier)] == ["f.test:80"]


async def test_pause_of_an_unknown_host_holds_its_later_urls(frontier: Frontier) -> None:
    now = await frontier.now()
    await frontier.pause_host("new.test:80", now + 30, "robots.txt 503")
    await start_crawl(frontier, {"new.test:80": OPEN}, 2)
    assert await lease(frontier) == []


async def test_reap_returns_expired_leases_and_stale_tokens_do_nothing(
    frontier: Frontier,
) -> None:
    crawl_id = await start_crawl(frontier, {"i.test:80": HostPolicy(0, 1)}, 1)
    [first] = await lease(frontier, seconds=0.2)
    assert await frontier.reap() == 0
    await asyncio.sleep(0.3)
    assert await frontier.reap() == 1
    assert (await frontier.counts(crawl_id)).queued == 1
    [second] = await lease(frontier)
    assert second.url == first.url
    assert second.attempts == first.attempts + 1  # a crash loop ends: reaping spends an attempt
    assert second.token != first.token
    assert await frontier.complete([first]) == [False]
    assert await frontier.retry(first, not_before=0, spend_attempt=True) is False
    assert await frontier.renew([first], 60) == [False]
    assert (await frontier.hosts(crawl_id))[0].in_flight == 1
    assert await frontier.complete([second]) == [True]
    assert await frontier.complete([second]) == [False]
    assert (await frontier.hosts(crawl_id))[0].in_flight == 0
    counts = await frontier.counts(crawl_id)
    assert (counts.seen, counts.queued, counts.in_flight, counts.done) == (1, 0, 0, 1)


async def test_renewed_lease_outlives_its_first_expiry(frontier: Frontier) -> None:
    await start_crawl(frontier, {"j.test:80": OPEN}, 1)
    held = await lease(frontier, seconds=0.3)
    assert await frontier.renew(held, 30) == [True]
    await asyncio.sleep(0.4)
    assert await frontier.reap() == 0
    assert await frontier.complete(held) == [True]


async def test_retry_waits_for_not_before_and_spends_attempts_on_request(
    frontier: Frontier,
) -> None:
    crawl_id = await start_crawl(frontier, {"k.test:80": OPEN}, 1)
    [first] = await lease(frontier)
    now = await frontier.now()
    assert await frontier.retry(first, not_before=now + 0.3, spend_attempt=True)
    assert (await frontier.hosts(crawl_id))[0].in_flight == 0
    assert (await frontier.counts(crawl_id)).queued == 1
    assert await lease(frontier) == []
    await asyncio.sleep(0.35)
    [second] = await lease(frontier)
    assert second.attempts == 1
    assert await frontier.retry(second, not_before=0, spend_attempt=False)
    [third] = await lease(frontier)
    assert third.attempts == 1


async def test_counts_follow_urls_through_their_states(frontier: Frontier) -> None:
    crawl_id = await start_crawl(frontier, {"l.test:80": OPEN}, 4)
    held = await lease(frontier, limit=3)
    await frontier.complete(held[:2])
    counts = await frontier.counts(crawl_id)
    assert (counts.seen, counts.queued, counts.in_flight, counts.done) == (4, 1, 1, 2)


async def test_discard_host_returns_its_queued_urls(frontier: Frontier) -> None:
    crawl_id = await start_crawl(frontier, {"m.test:80": OPEN, "n.test:80": OPEN}, 2)
    discarded = await frontier.discard_host(crawl_id, "m.test:80")
    assert sorted(item.url for item in discarded) == [
        "http://m.test:80/p/0",
        "http://m.test:80/p/1",
    ]
    assert {item.host for item in await lease(frontier)} == {"n.test:80"}
    assert await frontier.add(crawl_id, [url("m.test:80", 0)]) == 0  # still seen


async def test_dropped_crawl_forgets_queued_urls_but_keeps_seen(frontier: Frontier) -> None:
    crawl_id = await start_crawl(frontier, {"o.test:80": OPEN}, 3)
    [held] = await lease(frontier, limit=1)
    await frontier.drop_crawl(crawl_id)
    assert await lease(frontier) == []
    assert await frontier.complete([held]) == [True]
    counts = await frontier.counts(crawl_id)
    assert (counts.seen, counts.queued, counts.in_flight) == (3, 0, 0)
    assert await frontier.add(crawl_id, [url("o.test:80", 1)]) == 0
