"""Request and response models of the carts API."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from shopkeeper.core.bounds import WholeNumber, between
from shopkeeper.core.money import Money
from shopkeeper.shop.carts.models import MAX_LINE_QUANTITY
from shopkeeper.shop.carts.service import CartLine, CartView

Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]


class CartItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Sku
    quantity: Annotated[int, between(1, MAX_LINE_QUANTITY), WholeNumber]


class CartItemPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    quantity: Annotated[int, between(0, MAX_LINE_QUANTITY), WholeNumber]
    """0 removes the line."""


class CartItemOut(BaseModel):
    sku: str
    product_id: uuid.UUID
    name: str
    quantity: int
    unit_price: Money
    total: Money
    archived: bool
    """The product was withdrawn from sale: the line is left out of the subtotal and checkout
    refuses the cart until it is removed."""
    available: int
    """Units sellable right now across all warehouses (checkout reserves; this does not)."""

    @classmethod
    def of(cls, line: CartLine) -> CartItemOut:
        return cls(
            sku=line.sku,
            product_id=line.product_id,
            name=line.name,
            quantity=line.quantity,
            unit_price=line.unit_price,
            total=line.total,
            archived=line.archived,
            available=max(0, line.available),
        )


class CartOut(BaseModel):
    id: uuid.UUID
    status: str
    """`open`; `checked_out` once an order was placed from it; `merged` into a user's cart."""
    items: list[CartItemOut]
    subtotal: Money
    voucher_code: str | None = None
    """The voucher applied with POST /carts/{id}/voucher; checkout counts its use."""
    discount: Money
    """What the voucher takes off now; zero without one or when it no longer applies."""

    @classmethod
    def of(cls, cart: CartView) -> CartOut:
        return cls(
            id=cart.id,
            status=cart.status,
            items=[CartItemOut.of(line) for line in cart.lines],
            subtotal=cart.subtotal,
            voucher_code=cart.voucher_code,
            discount=cart.discount or Money.zero(cart.subtotal.currency),
        )


class VoucherCodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class CartShippingMethodOut(BaseModel):
    id: uuid.UUID
    name: str
    price: Money
