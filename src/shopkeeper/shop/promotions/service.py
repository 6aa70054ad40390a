"""Vouchers: staff manage them; carts ask what one takes off; checkout counts a use.

A voucher's `used` and a customer's counter change only through conditional UPDATEs in the
checkout's transaction (`claim_use`), re-checked under the row lock, so that a usage limit holds
under any number of concurrent checkouts; an order that expires or is cancelled before payment
hands its use back (`give_back_use`) in the transaction that changes its status.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import is_postgres
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound
from shopkeeper.shop.catalog import service as catalog_service
from shopkeeper.shop.promotions.models import (
    Voucher,
    VoucherCategory,
    VoucherCustomerUse,
    VoucherKind,
)
from shopkeeper.shop.promotions.pricing import fixed_discount, percentage_discount


class VoucherNotFound(NotFound):
    slug, title = "voucher-not-found", "Voucher not found"


class VoucherCodeTaken(Conflict):
    slug, title = "voucher-code-taken", "Voucher code already exists"


class VoucherNotApplicable(Conflict):
    """Extension `reason`: `expired`, `not-started`, `min-subtotal`, `used-up`,
    `per-customer-limit`, `no-eligible-items`."""

    slug, title = "voucher-not-applicable", "Voucher cannot be applied"

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail, reason=reason)
        self.reason = reason


class InvalidVoucher(InvalidInput):
    slug, title = "invalid-voucher", "Invalid voucher settings"


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A cart line as a voucher sees it."""

    product_id: uuid.UUID
    total: int


@dataclass(frozen=True, slots=True)
class VoucherView:
    voucher: Voucher
    category_ids: list[uuid.UUID]


def normalize_code(code: str) -> str:
    """Codes are matched case-insensitively: customers type them."""
    return code.strip().upper()


def customer_key(user_id: uuid.UUID | None, email: str | None) -> str:
    """Whose per-customer counter a use goes to: the user, or for a guest the e-mail."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"email:{(email or '').strip().lower()}"


# --- staff --------------------------------------------------------------------------------------


async def create_voucher(session: AsyncSession, *, values: dict[str, Any]) -> VoucherView:
    category_ids = list(values.pop("category_ids", None) or [])
    values["code"] = normalize_code(values["code"])
    _check(values)
    voucher = Voucher(**values, used=0)
    session.add(voucher)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise VoucherCodeTaken(f"A voucher {values['code']} exists", code=values["code"]) from exc
    await _set_categories(session, voucher.id, category_ids)
    await session.commit()
    return await get_voucher(session, voucher_id=voucher.id)


async def update_voucher(
    session: AsyncSession, *, voucher_id: uuid.UUID, changes: dict[str, Any]
) -> VoucherView:
    voucher = await _voucher(session, voucher_id, lock=True)
    category_ids = changes.pop("category_ids", None)
    if "code" in changes:
        changes["code"] = normalize_code(changes["code"])
    merged = {
        "kind": voucher.kind,
        "value": voucher.value,
        "starts_at": voucher.starts_at,
        "ends_at": voucher.ends_at,
        **changes,
    }
    _check(merged)
    limit = changes.get("usage_limit", voucher.usage_limit)
    if limit is not None and limit < voucher.used:
        raise InvalidVoucher(
            f"{voucher.used} orders already hold this voucher; the limit cannot go below that",
            field="usage_limit",
            used=voucher.used,
        )
    for name, value in changes.items():
        setattr(voucher, name, value)
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise VoucherCodeTaken(f"A voucher {changes.get('code')} exists") from exc
    if category_ids is not None:
        await session.execute(
            delete(VoucherCategory).where(VoucherCategory.voucher_id == voucher_id)
        )
        await _set_categories(session, voucher_id, list(category_ids))
    await session.commit()
    return await get_voucher(session, voucher_id=voucher_id)


async def get_voucher(session: AsyncSession, *, voucher_id: uuid.UUID) -> VoucherView:
    voucher = await _voucher(session, voucher_id)
    return VoucherView(voucher, await _categories(session, voucher_id))


async def list_vouchers(session: AsyncSession) -> list[VoucherView]:
    vouchers = (await session.scalars(select(Voucher).order_by(Voucher.created_at))).all()
    links = await session.execute(select(VoucherCategory.voucher_id, VoucherCategory.category_id))
    by_voucher: dict[uuid.UUID, list[uuid.UUID]] = {}
    for voucher_id, category_id in links:
        by_voucher.setdefault(voucher_id, []).append(category_id)
    return [VoucherView(each, sorted(by_voucher.get(each.id, []))) for each in vouchers]


# --- carts and checkout -------------------------------------------------------------------------


async def find_voucher(session: AsyncSession, code: str) -> Voucher:
    voucher = await session.scalar(select(Voucher).where(Voucher.code == normalize_code(code)))
    if voucher is None:
        raise VoucherNotFound(f"No voucher {code!r}")
    return voucher


async def discount_for(
    session: AsyncSession,
    *,
    voucher: Voucher,
    lines: Sequence[PricedLine],
    subtotal: int,
    shipping: int,
    now: datetime,
    customer: str | None = None,
) -> int:
    """What `voucher` takes off this cart now, or VoucherNotApplicable with its reason.

    The usage checks here are advisory (they tell a customer early); `claim_use` decides.
    """
    if voucher.starts_at is not None and now < voucher.starts_at:
        raise VoucherNotApplicable("not-started", f"{voucher.code} is not valid yet")
    if voucher.ends_at is not None and now >= voucher.ends_at:
        raise VoucherNotApplicable("expired", f"{voucher.code} has expired")
    if voucher.min_subtotal_amount is not None and subtotal < voucher.min_subtotal_amount:
        raise VoucherNotApplicable(
            "min-subtotal", f"{voucher.code} needs a subtotal of {voucher.min_subtotal_amount}"
        )
    if voucher.usage_limit is not None and voucher.used >= voucher.usage_limit:
        raise VoucherNotApplicable("used-up", f"{voucher.code} has been used up")
    if customer is not None and voucher.per_customer_limit is not None:
        used = await session.scalar(
            select(VoucherCustomerUse.used).where(
                VoucherCustomerUse.voucher_id == voucher.id,
                VoucherCustomerUse.customer == customer,
            )
        )
        if (used or 0) >= voucher.per_customer_limit:
            raise VoucherNotApplicable(
                "per-customer-limit", f"You have used {voucher.code} as often as allowed"
            )
    eligible = await _eligible_amount(session, voucher, lines)
    if eligible is None:
        raise VoucherNotApplicable(
            "no-eligible-items", f"Nothing in the cart is eligible for {voucher.code}"
        )
    if voucher.kind == VoucherKind.PERCENTAGE:
        return percentage_discount(eligible, voucher.value)
    if voucher.kind == VoucherKind.FIXED:
        return fixed_discount(eligible, voucher.value)
    return max(0, shipping)


async def claim_use(session: AsyncSession, *, voucher: Voucher, customer: str) -> None:
    """Count one use for an order being placed, in the checkout's transaction: conditional
    UPDATEs that re-check the limits under the row lock (PostgreSQL) or the single writer
    (SQLite). Raises VoucherNotApplicable (`used-up`, `per-customer-limit`); the caller's
    rollback then undoes everything."""
    claimed = await session.execute(
        update(Voucher)
        .where(
            Voucher.id == voucher.id,
            (Voucher.usage_limit.is_(None)) | (Voucher.used < Voucher.usage_limit),
        )
        .values(used=Voucher.used + 1)
        .returning(Voucher.used)
        .execution_options(synchronize_session=False)
    )
    if claimed.first() is None:
        raise VoucherNotApplicable("used-up", f"{voucher.code} has been used up")
    dialect = postgresql if is_postgres(session) else sqlite
    insert = dialect.insert(VoucherCustomerUse).values(
        voucher_id=voucher.id, customer=customer, used=1
    )
    limit = voucher.per_customer_limit
    upsert = insert.on_conflict_do_update(
        index_elements=["voucher_id", "customer"],
        set_={"used": VoucherCustomerUse.used + 1},
        where=(VoucherCustomerUse.used < limit) if limit is not None else None,
    ).returning(VoucherCustomerUse.used)
    if limit is not None and limit < 1:
        raise VoucherNotApplicable("per-customer-limit", f"{voucher.code} cannot be used")
    if (await session.execute(upsert)).first() is None:
        raise VoucherNotApplicable(
            "per-customer-limit", f"You have used {voucher.code} as often as allowed"
        )


async def give_back_use(
    session: AsyncSession, *, voucher_id: uuid.UUID, customer: str | None
) -> None:
    """An order holding a use expired or was cancelled before payment: the use returns, in the
    transaction that changed the order's status (so it returns exactly once)."""
    await session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id, Voucher.used > 0)
        .values(used=Voucher.used - 1)
        .execution_options(synchronize_session=False)
    )
    if customer is not None:
        await session.execute(
            update(VoucherCustomerUse)
            .where(
                VoucherCustomerUse.voucher_id == voucher_id,
                VoucherCustomerUse.customer == customer,
                VoucherCustomerUse.used > 0,
            )
            .values(used=VoucherCustomerUse.used - 1)
            .execution_options(synchronize_session=False)
        )


# --- helpers ------------------------------------------------------------------------------------


async def _eligible_amount(
    session: AsyncSession, voucher: Voucher, lines: Sequence[PricedLine]
) -> int | None:
    """The amount of the lines the voucher applies to; None when it applies to none."""
    category_ids = await _categories(session, voucher.id)
    if not category_ids:
        return sum(line.total for line in lines) if lines else None
    allowed = await catalog_service.category_subtree(session, category_ids)
    categories = await catalog_service.categories_of_products(
        session, {line.product_id for line in lines}
    )
    eligible = [line for line in lines if categories.get(line.product_id) in allowed]
    return sum(line.total for line in eligible) if eligible else None


async def _categories(session: AsyncSession, voucher_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(VoucherCategory.category_id).where(VoucherCategory.voucher_id == voucher_id)
    )
    return sorted(rows.all())


async def _set_categories(
    session: AsyncSession, voucher_id: uuid.UUID, category_ids: list[uuid.UUID]
) -> None:
    if not category_ids:
        return
    for category_id in dict.fromkeys(category_ids):
        session.add(VoucherCategory(voucher_id=voucher_id, category_id=category_id))
    try:
        await session.flush()
    except IntegrityError as exc:
        await session.rollback()
        raise InvalidVoucher("category_ids names an unknown category") from exc


async def _voucher(session: AsyncSession, voucher_id: uuid.UUID, *, lock: bool = False) -> Voucher:
    query = select(Voucher).where(Voucher.id == voucher_id)
    if lock and is_postgres(session):
        query = query.with_for_update()
    voucher = (await session.execute(query.execution_options(populate_existing=True))).scalar()
    if voucher is None:
        raise VoucherNotFound()
    return voucher


def _check(values: dict[str, Any]) -> None:
    kind, value = values.get("kind"), values.get("value") or 0
    if kind == VoucherKind.PERCENTAGE and not 0 < value <= 10_000:
        raise InvalidVoucher("A percentage is 1..10000 basis points", field="value")
    if kind == VoucherKind.FIXED and value <= 0:
        raise InvalidVoucher("A fixed voucher takes a positive amount off", field="value")
    starts, ends = values.get("starts_at"), values.get("ends_at")
    if starts is not None and ends is not None and ends <= starts:
        raise InvalidVoucher("ends_at must come after starts_at", field="ends_at")
