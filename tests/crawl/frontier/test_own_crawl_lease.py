"""`lease(crawl_id=...)`: a crawl kept inactive is leased by its own client alone (a Scrapy
process), under the same host slots as every other worker's leases."""

from __future__ import annotations

import uuid

from shopkeeper.crawl.frontier.base import Frontier, HostPolicy
from tests.crawl.frontier.test_frontier import url

HOST = "own.test:80"
SLOW = HostPolicy(delay_ms=60_000, max_inflight=1)


async def test_an_inactive_crawl_is_leased_by_its_own_client_only(frontier: Frontier) -> None:
    own = uuid.uuid4()
    await frontier.set_host_policy(own, HOST, HostPolicy(delay_ms=0, max_inflight=5))
    await frontier.add(own, [url(HOST, n) for n in range(3)])

    assert await frontier.lease(worker="native", limit=10, lease_seconds=30) == []
    leases = await frontier.lease(worker="scrapy", limit=10, lease_seconds=30, crawl_id=own)
    assert sorted(lease.url for lease in leases) == sorted(url(HOST, n).url for n in range(3))
    assert {lease.crawl_id for lease in leases} == {own}
    assert await frontier.complete(leases) == [True, True, True]
    assert (await frontier.counts(own)).done == 3


async def test_its_leases_share_the_host_slot_with_every_other_crawl(frontier: Frontier) -> None:
    native, own = uuid.uuid4(), uuid.uuid4()
    await frontier.set_host_policy(native, HOST, SLOW)
    await frontier.set_crawl_active(native, True)
    await frontier.add(native, [url(HOST, 1)])
    await frontier.set_host_policy(own, HOST, SLOW)
    await frontier.add(own, [url(HOST, 2)])

    [first] = await frontier.lease(worker="native", limit=10, lease_seconds=30)
    assert first.crawl_id == native
    # The host's start slot is taken for a minute: the own client waits like anyone else.
    assert await frontier.lease(worker="scrapy", limit=10, lease_seconds=30, crawl_id=own) == []
    await frontier.complete([first])
    assert await frontier.lease(worker="scrapy", limit=10, lease_seconds=30, crawl_id=own) == []
    # And another crawl's URLs are never handed to the own client.
    await frontier.add(native, [url(HOST, 3)])
    assert await frontier.lease(worker="scrapy", limit=10, lease_seconds=30, crawl_id=own) == []
