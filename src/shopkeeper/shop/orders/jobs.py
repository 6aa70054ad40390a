"""Periodic jobs of the orders domain (and the purge of Idempotency-Keys, which orders use most)."""

from __future__ import annotations

import structlog

from shopkeeper.core.db import utcnow
from shopkeeper.core.idempotency import purge_idempotency_keys
from shopkeeper.core.jobs import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders import service

log = structlog.get_logger(__name__)

EXPIRY_BATCH = 200


@periodic("orders.expire_reservations", every_seconds=30)
async def expire_reservations(runtime: Runtime) -> None:
    """Unpaid orders past `expires_at` become `expired` and their stock returns. Each order is
    its own unit of work with a conditional update, so a run racing a payment, another run or
    a cancel changes each order at most once and never releases its stock twice."""
    now = utcnow()
    expired = 0
    while True:
        async with runtime.db.session() as session:
            due = await service.due_for_expiry(session, now=now, limit=EXPIRY_BATCH)
        for order_id in due:
            async with runtime.db.session() as session:
                expired += await service.expire_order(session, order_id=order_id, now=now)
        if len(due) < EXPIRY_BATCH:
            break
    if expired:
        log.info("orders_expired", count=expired)


@periodic("idempotency.purge_keys", every_seconds=3600)
async def purge_idempotency(runtime: Runtime) -> None:
    purged = await purge_idempotency_keys(runtime.db)
    if purged:
        log.info("idempotency_keys_purged", count=purged)
