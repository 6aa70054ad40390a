from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from shopkeeper.core.money import Money
from shopkeeper.shop.orders.models import Order, OrderTransition
from shopkeeper.shop.orders.state import OrderStatus


class ShippingAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    line1: str = Field(min_length=1, max_length=300)
    line2: str | None = Field(default=None, max_length=300)
    city: str = Field(min_length=1, max_length=200)
    postal_code: str = Field(min_length=1, max_length=32)
    country: str = Field(min_length=2, max_length=2, pattern="^[A-Za-z]{2}$")
    """ISO 3166-1 alpha-2."""
    # Optional coordinates let stock be taken from the nearest warehouses.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class PlaceOrderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cart_id: uuid.UUID
    email: EmailStr | None = None
    """Where the confirmation goes; defaults to the account's e-mail, required for guests."""
    shipping_address: ShippingAddress
    shipping_method_id: uuid.UUID | None = None
    """Required once any shipping zone exists (GET /carts/{id}/shipping-methods lists them)."""


class ShipRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tracking_number: str | None = Field(default=None, min_length=1, max_length=100)


class OrderLineOut(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: Money
    total: Money


class ShippingMethodRef(BaseModel):
    id: uuid.UUID
    name: str


class OrderOut(BaseModel):
    id: uuid.UUID
    number: str
    status: OrderStatus
    email: str
    lines: list[OrderLineOut]
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    """Added to the total, or when catalog prices include tax, the share of it they hold."""
    total: Money
    """`subtotal - discount + shipping + tax` (prices including tax: without `+ tax`)."""
    voucher_code: str | None
    shipping_method: ShippingMethodRef | None
    shipping_address: dict[str, Any]
    tracking_number: str | None
    created_at: datetime
    expires_at: datetime
    paid_at: datetime | None
    shipped_at: datetime | None
    delivered_at: datetime | None
    cancelled_at: datetime | None

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        currency = order.currency

        def money(amount: int) -> Money:
            return Money(amount=amount, currency=currency)

        return cls(
            id=order.id,
            number=order.number,
            status=OrderStatus(order.status),
            email=order.email,
            lines=[
                OrderLineOut(
                    sku=line.sku,
                    name=line.name,
                    quantity=line.quantity,
                    unit_price=money(line.unit_price_amount),
                    total=money(line.total_amount),
                )
                for line in order.lines
            ],
            subtotal=money(order.subtotal_amount),
            discount=money(order.discount_amount),
            shipping=money(order.shipping_amount),
            tax=money(order.tax_amount),
            total=money(order.total_amount),
            voucher_code=order.voucher_code,
            shipping_method=(
                ShippingMethodRef(
                    id=order.shipping_method_id, name=order.shipping_method_name or ""
                )
                if order.shipping_method_id is not None
                else None
            ),
            shipping_address=order.shipping_address,
            tracking_number=order.tracking_number,
            created_at=order.created_at,
            expires_at=order.expires_at,
            paid_at=order.paid_at,
            shipped_at=order.shipped_at,
            delivered_at=order.delivered_at,
            cancelled_at=order.cancelled_at,
        )


class OrderPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class OrderTransitionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: OrderStatus | None
    to_status: OrderStatus
    at: datetime
    actor: str

    @classmethod
    def of(cls, transition: OrderTransition) -> OrderTransitionOut:
        return cls.model_validate(transition)
