"""The Redis frontier's key design: a crawl on one cluster slot, seen sets as integer sets."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from shopkeeper.crawl.frontier.base import HostPolicy, NewURL
from shopkeeper.crawl.frontier.redis import RedisFrontier, bucket_of
from tests.conftest import REDIS_URL, require_service


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    require_service("Redis", "127.0.0.1", 6379)
    connection = Redis.from_url(REDIS_URL)
    yield connection
    await connection.aclose()


@pytest.fixture
async def redis_frontier(client: Redis) -> AsyncIterator[RedisFrontier]:
    frontier = RedisFrontier(client, namespace=f"sktest-{secrets.token_hex(4)}")
    try:
        yield frontier
    finally:
        await frontier.delete_namespace()


async def test_a_crawls_keys_share_one_cluster_slot(
    redis_frontier: RedisFrontier, client: Redis
) -> None:
    crawl_id = uuid.uuid4()
    await redis_frontier.set_host_policy(crawl_id, "a.test:80", HostPolicy(0, 5))
    await redis_frontier.set_crawl_active(crawl_id, True)
    await redis_frontier.add(
        crawl_id,
        [NewURL(f"http://a.test/{n}", n * 7919 - 10**18, "a.test:80", 0) for n in range(50)],
    )
    [held] = await redis_frontier.lease(worker="t", limit=1, lease_seconds=30)
    await redis_frontier.retry(held, not_before=await redis_frontier.now() + 60, spend_attempt=True)
    keys = [key async for key in client.scan_iter(match=f"*{{crawl:{crawl_id}}}*")]
    assert len(keys) > 3  # seen buckets, the host queue, delayed retries, counters, hosts
    assert len({key_slot(key) for key in keys}) == 1


async def test_seen_fingerprints_are_stored_as_integer_sets(
    redis_frontier: RedisFrontier, client: Redis
) -> None:
    crawl_id = uuid.uuid4()
    extremes = [-(1 << 63), (1 << 63) - 1, -1, 0]
    fingerprints = extremes + [(n << 40) - (1 << 62) for n in range(300)]
    urls = [NewURL(f"http://b.test/{fp}", fp, "b.test:80", 0) for fp in fingerprints]
    assert await redis_frontier.add(crawl_id, urls) == len(fingerprints)
    assert await redis_frontier.add(crawl_id, urls) == 0
    for fp in extremes:
        key = redis_frontier.crawl_key(crawl_id, f"s:{bucket_of(fp)}")
        assert await client.object("encoding", key) == b"intset"
        assert await client.sismember(key, str(fp))
