"""The order lifecycle: which status may follow which. Pure, testable without a database."""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


_S = OrderStatus

ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.PENDING_PAYMENT: frozenset({_S.PAID, _S.CANCELLED, _S.EXPIRED}),
    _S.PAID: frozenset({_S.SHIPPED, _S.CANCELLED, _S.REFUNDED, _S.PARTIALLY_REFUNDED}),
    _S.SHIPPED: frozenset({_S.DELIVERED, _S.REFUNDED, _S.PARTIALLY_REFUNDED}),
    _S.DELIVERED: frozenset({_S.REFUNDED, _S.PARTIALLY_REFUNDED}),
    # A second partial refund keeps the status; refunding the rest completes it. A paid order
    # partially refunded before shipping still ships (the service refuses a second shipment).
    _S.PARTIALLY_REFUNDED: frozenset({_S.REFUNDED, _S.SHIPPED}),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REFUNDED: frozenset(),
}

TERMINAL_STATUSES = frozenset(status for status, nxt in ALLOWED_TRANSITIONS.items() if not nxt)

# Statuses in which an order not yet shipped holds reserved stock; cancel, expiry and a full
# refund release it, shipping moves it out of on_hand.
HOLDS_RESERVATION = frozenset({_S.PENDING_PAYMENT, _S.PAID, _S.PARTIALLY_REFUNDED})


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in ALLOWED_TRANSITIONS[current]
