"""The schedulers' part of alerting: every tick, evaluate the rules that are due."""

from __future__ import annotations

import asyncio

import structlog

from shopkeeper.core.messaging.periodic import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.logs.alerts.evaluator import evaluate_due_alerts
from shopkeeper.logs.store import LogStore, StoreUnavailable, open_store

log = structlog.get_logger(__name__)

_store: LogStore | None = None
_store_lock = asyncio.Lock()


async def process_store(settings: Settings) -> LogStore:
    """This process's handle on the log store, opened on first use and kept. Embedded, chDB
    shares one engine per process, so `serve` evaluates on the directory it owns; a separate
    scheduler needs a ClickHouse server (`SHOPKEEPER_LOGS_CLICKHOUSE_URL`)."""
    global _store
    async with _store_lock:
        if _store is None:
            _store = await open_store(settings)
        return _store


@periodic("logs.alerts.evaluate", every_seconds=1)
async def evaluate_alerts(runtime: Runtime) -> int:
    if not runtime.settings.logs_enabled:
        return 0
    try:
        store = await process_store(runtime.settings)
    except StoreUnavailable as exc:
        log.warning("alerts_store_unavailable", error=str(exc))
        return 0
    return await evaluate_due_alerts(runtime.db, store)
