"""Embedded (`serve` without a broker): the server fires schedules itself."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from shopkeeper.app import create_app
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.crawl.scheduling import CRAWL_BODY, all_jobs, api_key


async def test_an_embedded_server_fires_schedules(
    settings_factory: Callable[..., Settings],
    crawl_overrides: dict[str, Any],
    runtime: Runtime,
) -> None:
    settings = settings_factory(**crawl_overrides, run_background_in_process=True)
    embedded = Runtime(settings=settings, db=runtime.db, ratelimiter=RateLimiter(settings))
    app = create_app(runtime=embedded)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://test",
            headers=await api_key(embedded, "crawl:read", "crawl:write"),
        ) as client,
    ):
        schedule = (
            await client.post(
                "/api/v1/crawl/schedules",
                json={"name": "s", "cron": "* * * * * *", "crawl": CRAWL_BODY},
            )
        ).json()
        deadline = time.monotonic() + 30
        while not await all_jobs(client, schedule=schedule["id"]):
            assert time.monotonic() < deadline, "no job fired"
            await asyncio.sleep(0.1)
        await client.patch(f"/api/v1/crawl/schedules/{schedule['id']}", json={"enabled": False})
