"""Competitor prices per SKU: stored from `CompetitorPriceChanged`, read beside our own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.accounts.models import User
from shopkeeper.contracts.pricing import CompetitorPriceChanged
from shopkeeper.core.mail import Mailer
from shopkeeper.core.money import Money
from shopkeeper.shop.catalog.models import Variant
from shopkeeper.shop.competitors.models import CompetitorPrice

UNDERCUT_TEMPLATE = "competitor_undercut"


async def store_competitor_price(session: AsyncSession, event: CompetitorPriceChanged) -> None:
    """Keep the newest price per watch; an older event delivered late changes nothing."""
    row = await session.get(CompetitorPrice, event.watch_id)
    if row is None:
        session.add(
            CompetitorPrice(
                watch_id=event.watch_id,
                sku=event.sku,
                url=event.url,
                amount=event.new.amount,
                currency=event.new.currency,
                observed_at=event.observed_at,
            )
        )
    elif row.observed_at < event.observed_at:
        row.sku, row.url = event.sku, event.url
        row.amount, row.currency = event.new.amount, event.new.currency
        row.observed_at = event.observed_at
    await session.flush()


def undercut_percent(ours: int, theirs: int) -> float:
    """How far below our price theirs is, in percent of ours (negative when above)."""
    return 0.0 if ours <= 0 else (ours - theirs) * 100.0 / ours


async def alert_staff_if_undercut(
    session: AsyncSession, mailer: Mailer, event: CompetitorPriceChanged, *, percent: float | None
) -> int:
    """Mail every staff user when the new price is more than `percent` below our variant's
    (same currency only); return how many mails were queued."""
    if percent is None:
        return 0
    variant = await session.scalar(select(Variant).where(Variant.sku == event.sku))
    if variant is None or variant.currency != event.new.currency:
        return 0
    below = undercut_percent(variant.price, event.new.amount)
    if below <= percent:
        return 0
    staff = list(await session.scalars(select(User.email).where(User.is_staff.is_(True))))
    context = {
        "sku": event.sku,
        "url": event.url,
        "ours": Money(amount=variant.price, currency=variant.currency).to_decimal_string(),
        "theirs": Money(amount=event.new.amount, currency=event.new.currency).to_decimal_string(),
        "currency": variant.currency,
        "percent": f"{below:.1f}",
        "threshold": f"{percent:g}",
    }
    for email in sorted(staff):
        await mailer.send(session, to=email, template=UNDERCUT_TEMPLATE, context=context)
    return len(staff)


@dataclass(frozen=True, slots=True)
class CompetitorRow:
    sku: str
    product_id: object | None
    ours: Money | None
    url: str
    theirs: Money
    observed_at: datetime

    @property
    def undercut_percent(self) -> float | None:
        if self.ours is None or self.ours.currency != self.theirs.currency:
            return None
        return undercut_percent(self.ours.amount, self.theirs.amount)


async def competitor_rows(session: AsyncSession, *, sku: str | None = None) -> list[CompetitorRow]:
    """Every competitor price with ours beside it, by SKU then URL."""
    query = select(CompetitorPrice).order_by(CompetitorPrice.sku, CompetitorPrice.url)
    if sku is not None:
        query = query.where(CompetitorPrice.sku == sku)
    rows = []
    for price in await session.scalars(query):
        variant = price.variant
        rows.append(
            CompetitorRow(
                sku=price.sku,
                product_id=None if variant is None else variant.product_id,
                ours=None
                if variant is None
                else Money(amount=variant.price, currency=variant.currency),
                url=price.url,
                theirs=Money(amount=price.amount, currency=price.currency),
                observed_at=price.observed_at,
            )
        )
    return rows
