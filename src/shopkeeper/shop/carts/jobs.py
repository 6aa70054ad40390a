"""Periodic jobs of the carts domain."""

from __future__ import annotations

from datetime import timedelta

import structlog

from shopkeeper.core.db import utcnow
from shopkeeper.core.jobs import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.carts import service

log = structlog.get_logger(__name__)

PURGE_BATCH = 500


@periodic("carts.purge", every_seconds=3600)
async def purge_carts(runtime: Runtime) -> None:
    """Abandoned guest carts and old closed carts go, in batches, each its own transaction so
    the purge never holds many row locks at once (see `service.purge_carts`)."""
    before = utcnow() - timedelta(days=runtime.settings.cart_retention_days)
    purged = 0
    while True:
        async with runtime.db.session() as session:
            deleted = await service.purge_carts(session, before=before, limit=PURGE_BATCH)
        purged += deleted
        if deleted < PURGE_BATCH:
            break
    if purged:
        log.info("carts_purged", count=purged)
