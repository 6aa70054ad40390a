"""Pick the frontier adapter the settings ask for."""

from __future__ import annotations

from redis.asyncio import Redis

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings
from shopkeeper.crawl.frontier.base import Frontier
from shopkeeper.crawl.frontier.redis import RedisFrontier
from shopkeeper.crawl.frontier.sql import SQLFrontier


class FrontierConfigError(ValueError):
    """The settings ask for a frontier they do not give the means to reach."""


def build_frontier(settings: Settings, db: Database, redis: Redis | None = None) -> Frontier:
    """`SHOPKEEPER_CRAWL_FRONTIER`: `sql` on `db`; `redis` on the given client, or on a client of
    its own opened on `SHOPKEEPER_REDIS_URL` (closed by the frontier's `close()`)."""
    if settings.crawl_frontier == "sql":
        return SQLFrontier(db)
    namespace = f"{settings.redis_namespace}:crawl"
    if redis is not None:
        return RedisFrontier(redis, namespace=namespace)
    if settings.redis_url is None:
        raise FrontierConfigError("SHOPKEEPER_CRAWL_FRONTIER=redis needs SHOPKEEPER_REDIS_URL")
    client = Redis.from_url(settings.redis_url)
    return RedisFrontier(client, namespace=namespace, owns_client=True)
