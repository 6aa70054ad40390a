"""The shop's reaction to a competitor's price: keep it beside ours, and tell staff when it
undercuts ours by more than `SHOPKEEPER_COMPETITOR_UNDERCUT_ALERT_PERCENT`."""

from __future__ import annotations

from shopkeeper.contracts.pricing import CompetitorPriceChanged
from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.runtime import HandlerContext
from shopkeeper.shop.competitors.service import alert_staff_if_undercut, store_competitor_price


@handles(CompetitorPriceChanged)
async def keep_competitor_price(ctx: HandlerContext, event: CompetitorPriceChanged) -> None:
    await store_competitor_price(ctx.session, event)


@handles(CompetitorPriceChanged)
async def alert_on_undercut(ctx: HandlerContext, event: CompetitorPriceChanged) -> None:
    await alert_staff_if_undercut(
        ctx.session,
        ctx.mailer,
        event,
        percent=ctx.runtime.settings.competitor_undercut_alert_percent,
    )
