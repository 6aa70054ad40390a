"""Helpers of the price-watch tests: a competitor's page, a worker and the periodic round."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from fastapi import FastAPI

from shopkeeper.core.messaging.periodic import periodic_jobs, run_scheduler
from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.watch.jobs import price_watches
from tests.crawl.domain.support import worker_running


def jsonld_page(sku: str, price: str, currency: str = "USD") -> bytes:
    document = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": f"Their {sku}",
        "sku": sku,
        "offers": {"@type": "Offer", "price": price, "priceCurrency": currency},
    }
    return (
        f'<html><head><script type="application/ld+json">{json.dumps(document)}</script>'
        f"</head><body><h1>Their {sku}</h1></body></html>"
    ).encode()


@contextlib.asynccontextmanager
async def watching(app: FastAPI, runtime: Runtime) -> AsyncIterator[None]:
    """A crawl worker and a scheduler running the price-watch round, as in production."""
    assert price_watches is not None
    jobs = {"crawl.price_watches": periodic_jobs()["crawl.price_watches"]}
    stop = asyncio.Event()
    async with worker_running(app):
        scheduler = asyncio.create_task(run_scheduler(runtime, stop, jobs))
        try:
            yield
        finally:
            stop.set()
            await scheduler


async def wait_for_watch(
    client: httpx.AsyncClient,
    sku: str,
    ready: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get("/api/v1/crawl/watches", params={"sku": sku})
        assert response.status_code == 200, response.text
        watches = response.json()
        if watches and ready(watches[0]):
            return dict(watches[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"watch not ready: {watches}")
        await asyncio.sleep(0.1)
