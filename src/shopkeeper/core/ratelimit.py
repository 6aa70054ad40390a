"""Rate limits: in memory when embedded, shared through Redis when `SHOPKEEPER_REDIS_URL` is set."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from shopkeeper.core.errors import RateLimited
from shopkeeper.core.settings import Settings


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.storage: Storage
        if settings.redis_url:
            uri = (
                "async+" + settings.redis_url
                if "+" not in settings.redis_url
                else settings.redis_url
            )
            self.storage = RedisStorage(
                uri, implementation="redispy", key_prefix=f"{settings.redis_namespace}:rl"
            )
        else:
            self.storage = MemoryStorage()
        self.limiter = MovingWindowRateLimiter(self.storage)

    async def ensure_not_exceeded(self, limit: str, *key: str) -> None:
        """Raise 429 when the window for `key` is already full, without counting this call."""
        item = parse(limit)
        if not await self.limiter.test(item, *key):
            raise RateLimited(retry_after=await self._retry_after(item, *key))

    async def hit(self, limit: str, *key: str) -> None:
        """Count one event against `key`; raise 429 if this one goes over the limit."""
        item = parse(limit)
        if not await self.limiter.hit(item, *key):
            raise RateLimited(retry_after=await self._retry_after(item, *key))

    async def record(self, limit: str, *key: str) -> None:
        """Count one event without raising; the next `ensure_not_exceeded` sees it."""
        await self.limiter.hit(parse(limit), *key)

    async def clear(self, limit: str, *key: str) -> None:
        await self.limiter.clear(parse(limit), *key)

    async def _retry_after(self, item: RateLimitItem, *key: str) -> int:
        stats = await self.limiter.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))
