"""Request and response models of the vouchers API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from shopkeeper.core.money import Money
from shopkeeper.shop.promotions.models import VoucherKind
from shopkeeper.shop.promotions.service import InvalidVoucher, VoucherView

Code = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^\S+$")
]
Count = Annotated[int, Field(ge=0, le=1_000_000_000, strict=True)]
Value = Annotated[int, Field(ge=0, le=1_000_000_000_000, strict=True)]
CategoryIds = Annotated[list[uuid.UUID], Field(max_length=100)]


class VoucherIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code
    kind: VoucherKind
    value: Value = 0
    """Basis points for `percentage` (1000 = 10 %), minor units for `fixed`."""
    min_subtotal: Money | None = None
    usage_limit: Count | None = None
    per_customer_limit: Count | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    category_ids: CategoryIds | None = None

    def values(self, currency: str) -> dict[str, Any]:
        values = self.model_dump(exclude={"min_subtotal"})
        values["min_subtotal_amount"] = _amount(self.min_subtotal, currency)
        return values


class VoucherPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    kind: VoucherKind | None = None
    value: Value | None = None
    min_subtotal: Money | None = None
    usage_limit: Count | None = None
    per_customer_limit: Count | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    category_ids: CategoryIds | None = None

    def changes(self, currency: str) -> dict[str, Any]:
        """Only the fields sent; an explicit null clears an optional one."""
        changes = self.model_dump(exclude_unset=True, exclude={"min_subtotal"})
        for required in ("code", "kind", "value"):
            if required in changes and changes[required] is None:
                del changes[required]
        if "min_subtotal" in self.model_fields_set:
            changes["min_subtotal_amount"] = _amount(self.min_subtotal, currency)
        return changes


class VoucherOut(BaseModel):
    id: uuid.UUID
    code: str
    kind: VoucherKind
    value: int
    min_subtotal: Money | None
    usage_limit: int | None
    per_customer_limit: int | None
    used: int
    """Orders holding the voucher that are not expired or cancelled."""
    starts_at: datetime | None
    ends_at: datetime | None
    category_ids: list[uuid.UUID]
    created_at: datetime

    @classmethod
    def of(cls, view: VoucherView, currency: str) -> VoucherOut:
        voucher = view.voucher
        return cls(
            id=voucher.id,
            code=voucher.code,
            kind=VoucherKind(voucher.kind),
            value=voucher.value,
            min_subtotal=(
                None
                if voucher.min_subtotal_amount is None
                else Money(amount=voucher.min_subtotal_amount, currency=currency)
            ),
            usage_limit=voucher.usage_limit,
            per_customer_limit=voucher.per_customer_limit,
            used=voucher.used,
            starts_at=voucher.starts_at,
            ends_at=voucher.ends_at,
            category_ids=view.category_ids,
            created_at=voucher.created_at,
        )


def _amount(money: Money | None, currency: str) -> int | None:
    if money is None:
        return None
    if money.currency != currency:
        raise InvalidVoucher(f"The shop sells in {currency}", field="min_subtotal")
    if money.amount < 0:
        raise InvalidVoucher("min_subtotal cannot be negative", field="min_subtotal")
    return money.amount
