"""The shop's own logs reach the log store in-process, without configuration."""

from __future__ import annotations

import asyncio
import logging

import httpx
import structlog
from asgi_lifespan import LifespanManager

from shopkeeper.app import create_app
from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore


async def _internal_rows(store: LogStore, marker: str) -> list[dict[str, object]]:
    return await store.query(
        f"SELECT * FROM {store.table} WHERE tenant = 'default' AND service = 'shopkeeper' "
        "AND source = 'internal' AND (has(mapValues(attributes), {m:String}) "
        "OR position(message, {m:String}) > 0)",
        {"m": marker},
    )


async def test_request_and_application_logs_are_searchable_at_once(
    logs_settings: Settings, log_store: LogStore, tenant: str
) -> None:
    settings = logs_settings.model_copy(update={"logs_ship_own_logs": True, "log_level": "INFO"})
    app = create_app(settings)
    marker = f"req-{tenant}"
    async with LifespanManager(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as http:
            response = await http.get("/health/live", headers={"X-Request-ID": marker})
            assert response.status_code == 200
        structlog.get_logger("shopkeeper.test").warning("stock_low", sku=marker)
        logging.getLogger("shopkeeper.stdlib").error("stdlib says %s", marker)
        rows: list[dict[str, object]] = []
        for _ in range(40):  # flushed every half second
            rows = await _internal_rows(log_store, marker)
            if len(rows) >= 3:
                break
            await asyncio.sleep(0.1)
    by_message = {row["message"]: row for row in rows}
    request = by_message["request"]
    assert request["level"] == "info"
    assert request["attributes"]["request_id"] == marker  # type: ignore[index]
    assert request["attributes"]["route"] == "/health/live"  # type: ignore[index]
    assert request["attributes"]["status"] == "200"  # type: ignore[index]
    assert "duration_ms" in request["attributes"]  # type: ignore[operator]
    assert by_message["stock_low"]["level"] == "warn"
    assert by_message[f"stdlib says {marker}"]["level"] == "error"
