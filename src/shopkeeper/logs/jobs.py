"""Periodic work of the logs system that is not alerting: retention and the disk guard."""

from __future__ import annotations

import structlog

from shopkeeper.core.messaging.periodic import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.logs.process_store import process_store
from shopkeeper.logs.retention import apply_retention
from shopkeeper.logs.store import StoreUnavailable

log = structlog.get_logger(__name__)


@periodic("logs.retention", every_seconds=300)
async def enforce_retention(runtime: Runtime) -> None:
    if not runtime.settings.logs_enabled:
        return
    try:
        store = await process_store(runtime.settings)
    except StoreUnavailable as exc:
        log.warning("retention_store_unavailable", error=str(exc))
        return
    await apply_retention(store, runtime.settings)
