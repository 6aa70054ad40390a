"""Property tests of the order state machine: the pure transition table, and random sequences
of lifecycle operations applied to real orders, checking status, stock and the audit trail."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shopkeeper.core.db import utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders import service
from shopkeeper.shop.orders.models import OrderTransition
from shopkeeper.shop.orders.state import (
    ALLOWED_TRANSITIONS,
    HOLDS_RESERVATION,
    TERMINAL_STATUSES,
    OrderStatus,
    can_transition,
)
from tests.shop.orders.conftest import checkout, create_cart, create_sku, stock_of

S = OrderStatus


def test_the_table_is_exactly_the_documented_lifecycle() -> None:
    edges = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert edges == {
        (S.PENDING_PAYMENT, S.PAID),
        (S.PENDING_PAYMENT, S.CANCELLED),
        (S.PENDING_PAYMENT, S.EXPIRED),
        (S.PAID, S.SHIPPED),
        (S.PAID, S.CANCELLED),
        (S.SHIPPED, S.DELIVERED),
        *((a, b) for a in (S.PAID, S.SHIPPED, S.DELIVERED) for b in (S.REFUNDED,)),
        *((a, S.PARTIALLY_REFUNDED) for a in (S.PAID, S.SHIPPED, S.DELIVERED)),
        (S.PARTIALLY_REFUNDED, S.REFUNDED),
        (S.PARTIALLY_REFUNDED, S.SHIPPED),
    }
    assert {S.CANCELLED, S.EXPIRED, S.REFUNDED} == TERMINAL_STATUSES


@given(st.lists(st.sampled_from(list(OrderStatus)), max_size=30))
def test_no_walk_returns_to_unpaid_or_paid_or_leaves_a_terminal_status(
    requests: list[OrderStatus],
) -> None:
    status, seen = S.PENDING_PAYMENT, [S.PENDING_PAYMENT]
    for target in requests:
        if can_transition(status, target):
            status = target
            seen.append(status)
    # Properties of the table a careless new edge would break (e.g. paid -> pending_payment).
    assert seen.count(S.PENDING_PAYMENT) == 1 and seen.count(S.PAID) <= 1
    assert all(status not in TERMINAL_STATUSES for status in seen[:-1])


def test_every_status_can_still_end() -> None:
    """From any status some path leads to a terminal status or to delivered: no order is stuck."""
    finished = TERMINAL_STATUSES | {S.DELIVERED}
    for start in OrderStatus:
        reachable, frontier = {start}, [start]
        while frontier:
            for following in ALLOWED_TRANSITIONS[frontier.pop()]:
                if following not in reachable:
                    reachable.add(following)
                    frontier.append(following)
        assert reachable & finished, start


OPERATIONS = ["pay", "cancel", "expire", "ship", "deliver", "refund", "refund_part"]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(operations=st.lists(st.sampled_from(OPERATIONS), min_size=1, max_size=7))
async def test_any_sequence_of_operations_keeps_order_and_stock_consistent(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
    runtime: Runtime,
    operations: list[str],
) -> None:
    on_hand, quantity = 9, 3
    sku = await create_sku(client, staff_headers, on_hand=on_hand)
    created = await checkout(
        client, customer_headers, await create_cart(client, customer_headers, [(sku, quantity)])
    )
    assert created.status_code == 201, created.text
    order_id = uuid.UUID(created.json()["id"])
    url = f"/api/v1/orders/{order_id}"
    expected, shipped = S.PENDING_PAYMENT, False

    for operation in operations:
        before = expected
        if operation == "pay":
            async with runtime.db.session() as session:
                changed = await service.mark_paid(session, order_id=order_id, at=utcnow())
                await session.commit()
            assert changed == (before == S.PENDING_PAYMENT)
            expected = S.PAID if changed else before
        elif operation == "expire":
            async with runtime.db.session() as session:
                changed = await service.expire_order(
                    session, order_id=order_id, now=utcnow() + timedelta(days=1)
                )
            assert changed == (before == S.PENDING_PAYMENT)
            expected = S.EXPIRED if changed else before
        elif operation in ("refund", "refund_part"):
            target = S.REFUNDED if operation == "refund" else S.PARTIALLY_REFUNDED
            async with runtime.db.session() as session:
                try:
                    await service.mark_refunded(
                        session, order_id=order_id, fully=operation == "refund"
                    )
                    await session.commit()
                    refused = False
                except service.InvalidTransition:
                    refused = True
            if before in (S.CANCELLED, S.EXPIRED, S.REFUNDED) or before == target:
                assert not refused
            elif can_transition(before, target):
                assert not refused
                expected = target
            else:
                assert refused
        else:
            target = {"cancel": S.CANCELLED, "ship": S.SHIPPED, "deliver": S.DELIVERED}[operation]
            headers = customer_headers if operation == "cancel" else staff_headers
            response = await client.post(f"{url}/{operation}", headers=headers)
            allowed = can_transition(before, target) and not (target == S.SHIPPED and shipped)
            if allowed:
                assert response.status_code == 200, (operation, before, response.text)
                expected = target
                shipped = shipped or target == S.SHIPPED
            else:
                assert response.status_code == 409, (operation, before, response.text)
                assert response.json()["type"].endswith("/invalid-transition")

        current = (await client.get(url, headers=customer_headers)).json()["status"]
        assert current == expected, (operations, operation)
        stock = await stock_of(client, staff_headers, sku)
        assert 0 <= stock["reserved"] <= stock["on_hand"]
        holds = expected in HOLDS_RESERVATION and not shipped
        assert stock["reserved"] == (quantity if holds else 0)
        assert stock["on_hand"] == on_hand - (quantity if shipped else 0)

    async with runtime.db.session() as session:
        trail = (
            await session.scalars(
                select(OrderTransition)
                .where(OrderTransition.order_id == order_id)
                .order_by(OrderTransition.at, OrderTransition.id)
            )
        ).all()
    assert trail[0].from_status is None and trail[0].to_status == S.PENDING_PAYMENT
    for previous, following in itertools.pairwise(trail):
        assert following.from_status == previous.to_status
        assert can_transition(S(following.from_status), S(following.to_status))
    assert trail[-1].to_status == expected
