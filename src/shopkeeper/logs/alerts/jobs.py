"""The schedulers' part of alerting: every tick, evaluate the rules that are due."""

from __future__ import annotations

import time

import structlog

from shopkeeper.core.db import utcnow
from shopkeeper.core.messaging.periodic import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.logs.alerts.evaluator import any_due, evaluate_due_alerts
from shopkeeper.logs.process_store import process_store
from shopkeeper.logs.store import StoreUnavailable

log = structlog.get_logger(__name__)

_WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


@periodic("logs.alerts.evaluate", every_seconds=1)
async def evaluate_alerts(runtime: Runtime) -> int:
    """Rules are claimed one by one, so schedulers running this at once share the work. A
    scheduler that cannot reach the log store claims nothing, leaving the rules to others."""
    global _last_warning
    if not runtime.settings.logs_enabled or not await any_due(runtime.db, now=utcnow()):
        return 0
    try:
        store = await process_store(runtime.settings)
    except StoreUnavailable as exc:
        if time.monotonic() - _last_warning > _WARN_EVERY_SECONDS:
            _last_warning = time.monotonic()
            log.warning("alerts_store_unavailable", error=str(exc))
        return 0
    return await evaluate_due_alerts(runtime.db, store)
