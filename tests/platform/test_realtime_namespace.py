"""Issue 18 item 7: two shops on one Redis database with different `SHOPKEEPER_REDIS_NAMESPACE`
never see each other's real-time messages; two processes of one shop do."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from shopkeeper.core.realtime import RealtimeHub, _Client
from shopkeeper.core.settings import Settings


def listen(hub: RealtimeHub, topic: str) -> asyncio.Queue[dict[str, object]]:
    client = _Client(queue=asyncio.Queue(maxsize=10), topics=frozenset({topic}))
    hub._clients.setdefault(topic, set()).add(client)
    return client.queue


async def test_namespaces_isolate_realtime_channels(
    settings_factory: Callable[..., Settings], redis_url: str
) -> None:
    shop_a, shop_b = (f"shop-{secrets.token_hex(4)}" for _ in range(2))
    publisher = RealtimeHub(settings_factory(redis_url=redis_url, redis_namespace=shop_a))
    same_shop = RealtimeHub(settings_factory(redis_url=redis_url, redis_namespace=shop_a))
    other_shop = RealtimeHub(settings_factory(redis_url=redis_url, redis_namespace=shop_b))
    assert publisher.channel_prefix.startswith(f"{shop_a}:")
    for hub in (same_shop, other_shop):
        await hub.start()
    try:
        mine, theirs = listen(same_shop, "staff"), listen(other_shop, "staff")
        await publisher.publish("staff", {"type": "order.created", "number": 1})
        assert await asyncio.wait_for(mine.get(), timeout=10) == {
            "type": "order.created",
            "number": 1,
        }
        await asyncio.sleep(0.3)  # what would cross namespaces has had time to arrive
        assert theirs.empty()
    finally:
        for hub in (publisher, same_shop, other_shop):
            await hub.stop()
