"""The schedulers' part of alerting: every tick, evaluate the rules that are due."""

from __future__ import annotations

import structlog

from shopkeeper.core.messaging.periodic import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.logs.alerts.evaluator import evaluate_due_alerts
from shopkeeper.logs.process_store import process_store
from shopkeeper.logs.store import StoreUnavailable

log = structlog.get_logger(__name__)


@periodic("logs.alerts.evaluate", every_seconds=1)
async def evaluate_alerts(runtime: Runtime) -> int:
    """Rules are claimed one by one, so schedulers running this at once share the work."""
    if not runtime.settings.logs_enabled:
        return 0
    try:
        store = await process_store(runtime.settings)
    except StoreUnavailable as exc:
        log.warning("alerts_store_unavailable", error=str(exc))
        return 0
    return await evaluate_due_alerts(runtime.db, store)
