"""What the shop's pages read. Reads only, each a fixed number of statements whatever the page
size; every change goes through the owning domain's service (see the page modules)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.accounts.models import User
from shopkeeper.shop.catalog.models import Product, Variant
from shopkeeper.shop.inventory.models import StockLevel, StockThreshold, Warehouse
from shopkeeper.shop.orders.models import Order, OrderLine, OrderTransition
from shopkeeper.shop.payments.models import Payment, PaymentStatus, Refund

PAGE_SIZE = 50


def start_of_today() -> datetime:
    return datetime.combine(datetime.now(UTC).date(), time.min, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Today:
    orders: int
    revenue: dict[str, int]
    """Paid today, per currency."""
    needs_review: int
    low_stock: list[LowStock]
    recent: list[Order]


@dataclass(frozen=True, slots=True)
class LowStock:
    sku: str
    name: str
    product_id: uuid.UUID
    available: int
    threshold: int


async def today(session: AsyncSession, *, default_threshold: int) -> Today:
    since = start_of_today()
    orders = await session.scalar(select(func.count()).where(Order.created_at >= since))
    revenue_rows = await session.execute(
        select(Order.currency, func.sum(Order.total_amount))
        .where(Order.paid_at >= since)
        .group_by(Order.currency)
    )
    needs_review = await session.scalar(
        select(func.count()).where(Payment.status == PaymentStatus.NEEDS_REVIEW)
    )
    recent = await session.scalars(
        select(Order).where(Order.created_at >= since).order_by(Order.id.desc()).limit(8)
    )
    return Today(
        orders=int(orders or 0),
        revenue={currency: int(total or 0) for currency, total in revenue_rows},
        needs_review=int(needs_review or 0),
        low_stock=await low_stock(session, default_threshold=default_threshold),
        recent=list(recent),
    )


async def low_stock(
    session: AsyncSession, *, default_threshold: int, limit: int = 10
) -> list[LowStock]:
    """Live variants whose sellable units across warehouses are at or below their threshold."""
    available = (
        select(StockLevel.sku, func.sum(StockLevel.on_hand - StockLevel.reserved).label("units"))
        .group_by(StockLevel.sku)
        .subquery()
    )
    units = func.coalesce(available.c.units, 0)
    threshold = func.coalesce(StockThreshold.low_stock_threshold, default_threshold)
    rows = await session.execute(
        select(Variant.sku, Variant.name, Product.name, Product.id, units, threshold)
        .join(Product, Product.id == Variant.product_id)
        .outerjoin(available, available.c.sku == Variant.sku)
        .outerjoin(StockThreshold, StockThreshold.sku == Variant.sku)
        .where(Product.archived_at.is_(None), _live_variant())
        .where(units <= threshold)
        .order_by(units, Variant.sku)
        .limit(limit)
    )
    return [
        LowStock(
            sku=sku,
            name=_variant_name(product_name, variant_name),
            product_id=product_id,
            available=int(units_left),
            threshold=int(limit_units),
        )
        for sku, variant_name, product_name, product_id, units_left, limit_units in rows
    ]


def _live_variant() -> ColumnElement[bool]:
    return Variant.archived_at.is_(None)


def _variant_name(product: str, variant: str | None) -> str:
    return f"{product} — {variant}" if variant else product


# --- orders -------------------------------------------------------------------------------------


async def orders_page(
    session: AsyncSession, *, status: str | None, search: str | None, before: uuid.UUID | None
) -> tuple[list[Order], uuid.UUID | None]:
    """Newest first (ids are UUIDv7), by cursor: `before` is the last id of the previous page."""
    query: Select[Order] = select(Order).order_by(Order.id.desc())
    if status:
        query = query.where(Order.status == status)
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(Order.number.ilike(pattern), Order.email.ilike(pattern)))
    if before is not None:
        query = query.where(Order.id < before)
    rows = list((await session.scalars(query.limit(PAGE_SIZE + 1))).all())
    more = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    return rows[:PAGE_SIZE], more


@dataclass(slots=True)
class OrderDetail:
    order: Order
    lines: list[OrderLine]
    transitions: list[OrderTransition]
    payments: list[Payment]
    refunds: dict[uuid.UUID, list[Refund]]
    customer: User | None
    actors: dict[str, str] = field(default_factory=dict)


async def order_detail(session: AsyncSession, order_id: uuid.UUID) -> OrderDetail | None:
    order = await session.get(Order, order_id, populate_existing=True)
    if order is None:
        return None
    lines = await session.scalars(
        select(OrderLine).where(OrderLine.order_id == order_id).order_by(OrderLine.position)
    )
    transitions = list(
        await session.scalars(
            select(OrderTransition)
            .where(OrderTransition.order_id == order_id)
            .order_by(OrderTransition.at, OrderTransition.id)
        )
    )
    payments = list(
        await session.scalars(
            select(Payment).where(Payment.order_id == order_id).order_by(Payment.created_at)
        )
    )
    refunds: dict[uuid.UUID, list[Refund]] = defaultdict(list)
    if payments:
        for refund in await session.scalars(
            select(Refund)
            .where(Refund.payment_id.in_([p.id for p in payments]))
            .order_by(Refund.created_at)
        ):
            refunds[refund.payment_id].append(refund)
    customer = await session.get(User, order.user_id) if order.user_id is not None else None
    return OrderDetail(
        order=order,
        lines=list(lines),
        transitions=transitions,
        payments=payments,
        refunds=dict(refunds),
        customer=customer,
        actors=await actor_names(session, [t.actor for t in transitions]),
    )


async def actor_names(session: AsyncSession, actors: list[str]) -> dict[str, str]:
    """ "staff:<uuid>" -> "staff: Ann Operator" (or their e-mail)."""
    ids: dict[str, uuid.UUID] = {}
    for actor in actors:
        _, _, raw = actor.partition(":")
        try:
            ids[actor] = uuid.UUID(raw)
        except ValueError:
            continue
    if not ids:
        return {}
    users = {
        user.id: user
        for user in await session.scalars(select(User).where(User.id.in_(set(ids.values()))))
    }
    names: dict[str, str] = {}
    for actor, user_id in ids.items():
        user = users.get(user_id)
        if user is not None:
            names[actor] = f"{actor.partition(':')[0]}: {user.full_name or user.email}"
    return names


# --- payments -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewItem:
    payment: Payment
    order: Order


async def needs_review(session: AsyncSession) -> list[ReviewItem]:
    rows = await session.execute(
        select(Payment, Order)
        .join(Order, Order.id == Payment.order_id)
        .where(Payment.status == PaymentStatus.NEEDS_REVIEW)
        .order_by(Payment.created_at)
        .limit(200)
    )
    return [ReviewItem(payment=payment, order=order) for payment, order in rows]


# --- products and stock -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductRow:
    product: Product
    variants: int
    min_price: int | None
    max_price: int | None
    currency: str | None
    available: int


async def products_page(
    session: AsyncSession, *, search: str | None, after: str | None
) -> tuple[list[ProductRow], str | None]:
    """By name, then id; `after` is "<name>|<id>" of the previous page's last row."""
    query = select(Product).where(Product.archived_at.is_(None))
    if search:
        pattern = f"%{search.strip().lower()}%"
        skus = select(Variant.product_id).where(Variant.sku.ilike(pattern))
        query = query.where(or_(Product.name.ilike(pattern), Product.id.in_(skus)))
    if after:
        name, _, raw_id = after.rpartition("|")
        try:
            last_id = uuid.UUID(raw_id)
        except ValueError:
            last_id = None
        if last_id is not None:
            query = query.where(
                or_(Product.name > name, (Product.name == name) & (Product.id > last_id))
            )
    products = list(
        await session.scalars(query.order_by(Product.name, Product.id).limit(PAGE_SIZE + 1))
    )
    more = products[PAGE_SIZE - 1] if len(products) > PAGE_SIZE else None
    products = products[:PAGE_SIZE]
    ids = [product.id for product in products]
    stats: dict[uuid.UUID, tuple[int, int | None, int | None, str | None]] = {}
    units: dict[uuid.UUID, int] = {}
    if ids:
        for product_id, count, low, high, currency in await session.execute(
            select(
                Variant.product_id,
                func.count(),
                func.min(Variant.price),
                func.max(Variant.price),
                func.max(Variant.currency),
            )
            .where(Variant.product_id.in_(ids), _live_variant())
            .group_by(Variant.product_id)
        ):
            stats[product_id] = (int(count), low, high, currency)
        for product_id, total in await session.execute(
            select(Variant.product_id, func.sum(StockLevel.on_hand - StockLevel.reserved))
            .join(StockLevel, StockLevel.sku == Variant.sku)
            .where(Variant.product_id.in_(ids), _live_variant())
            .group_by(Variant.product_id)
        ):
            units[product_id] = int(total or 0)
    rows = [
        ProductRow(
            product=product,
            variants=stats.get(product.id, (0, None, None, None))[0],
            min_price=stats.get(product.id, (0, None, None, None))[1],
            max_price=stats.get(product.id, (0, None, None, None))[2],
            currency=stats.get(product.id, (0, None, None, None))[3],
            available=units.get(product.id, 0),
        )
        for product in products
    ]
    return rows, (f"{more.name}|{more.id}" if more is not None else None)


@dataclass(frozen=True, slots=True)
class StockCell:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True, slots=True)
class VariantRow:
    variant: Variant
    product: Product
    stock: dict[uuid.UUID, StockCell]
    threshold: int

    @property
    def available(self) -> int:
        return sum(cell.available for cell in self.stock.values())


async def warehouses(session: AsyncSession) -> list[Warehouse]:
    return list(await session.scalars(select(Warehouse).order_by(Warehouse.code)))


async def variant_rows(
    session: AsyncSession,
    *,
    default_threshold: int,
    product_id: uuid.UUID | None = None,
    search: str | None = None,
    limit: int = 200,
) -> list[VariantRow]:
    """Live variants with their stock in every warehouse: three statements."""
    query = (
        select(Variant, Product)
        .join(Product, Product.id == Variant.product_id)
        .where(_live_variant(), Product.archived_at.is_(None))
    )
    if product_id is not None:
        query = query.where(Variant.product_id == product_id)
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(or_(Variant.sku.ilike(pattern), Product.name.ilike(pattern)))
    pairs = list(
        await session.execute(
            query.order_by(Product.name, Variant.position, Variant.sku).limit(limit)
        )
    )
    skus = [variant.sku for variant, _ in pairs]
    stock: dict[str, dict[uuid.UUID, StockCell]] = defaultdict(dict)
    thresholds: dict[str, int] = {}
    if skus:
        for level in await session.scalars(select(StockLevel).where(StockLevel.sku.in_(skus))):
            stock[level.sku][level.warehouse_id] = StockCell(level.on_hand, level.reserved)
        for own in await session.scalars(
            select(StockThreshold).where(StockThreshold.sku.in_(skus))
        ):
            thresholds[own.sku] = own.low_stock_threshold
    return [
        VariantRow(
            variant=variant,
            product=product,
            stock=stock.get(variant.sku, {}),
            threshold=thresholds.get(variant.sku, default_threshold),
        )
        for variant, product in pairs
    ]
