"""The price-watch round as a periodic job: read finished checks, queue due ones."""

from __future__ import annotations

import structlog

from shopkeeper.core.messaging.periodic import periodic
from shopkeeper.core.runtime import Runtime
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.watch.service import run_watches

log = structlog.get_logger(__name__)

WATCH_ROUND_SECONDS = 2.0
"""How often finished checks are read and due ones queued: a price is recorded this long at most
after its page is stored, and a watch is checked this late at most after it is due."""


@periodic("crawl.price_watches", every_seconds=WATCH_ROUND_SECONDS)
async def price_watches(runtime: Runtime) -> dict[str, int]:
    if not runtime.settings.crawl_enabled:
        return {}
    context = CrawlContext.build(runtime.settings, runtime.db)
    try:
        done = await run_watches(context)
    finally:
        await context.close()
    if done["read"] or done["queued"]:
        log.info("price_watches_round", **done)
    return done
