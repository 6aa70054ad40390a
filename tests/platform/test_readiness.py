"""`/health/ready` covers the broker and Redis once they are configured."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from asgi_lifespan import LifespanManager

from shopkeeper.app import create_app
from shopkeeper.core.health import check_dependencies
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings


def _runtime_with(runtime: Runtime, settings: Settings) -> Runtime:
    return Runtime(settings=settings, db=runtime.db, ratelimiter=runtime.ratelimiter)


async def test_ready_checks_a_reachable_broker_and_redis(
    runtime: Runtime,
    settings_factory: Callable[..., Settings],
    rabbitmq: str,
    broker_queue: str,
    redis_url: str,
) -> None:
    settings = settings_factory(broker_url=rabbitmq, broker_queue=broker_queue, redis_url=redis_url)
    configured = _runtime_with(runtime, settings)
    app = create_app(runtime=configured)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as http,
    ):
        response = await http.get("/health/ready")

    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "broker": "ok",
        "redis": "ok",
    }


async def test_ready_names_the_broker_and_redis_when_they_are_down(
    runtime: Runtime, settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory(
        broker_url="amqp://guest:guest@127.0.0.1:1/", redis_url="redis://127.0.0.1:1/0"
    )

    results = await check_dependencies(_runtime_with(runtime, settings))

    assert results["database"] == "ok"
    assert results["broker"] != "ok"
    assert results["redis"] != "ok"
