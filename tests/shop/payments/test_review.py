"""Staff on payments: the list with its filters, and resolving the ones that need review
(accept or refund the reported amount), audited, idempotent and safe against racing callbacks."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import func, select

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.models import PaymentResolution, Refund
from tests.shop.payments.fakes.stripe_fake import FakeStripe
from tests.shop.payments.helpers import deliver, paid_transitions, sandbox_callback
from tests.support.shop import (
    OrderFactory,
    make_user,
    order_status,
    payment_of,
    problem_slug,
    start_payment,
)


async def _in_review(
    client: httpx.AsyncClient,
    customer: dict[str, str],
    new_order: OrderFactory,
    *,
    reported: int,
    currency: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order and its sandbox payment, which the provider said captured `reported`."""
    order = await new_order(customer)
    payment = await start_payment(client, customer, order["id"], "sandbox")
    answer = await deliver(
        client, "sandbox", *sandbox_callback(payment, amount=reported, currency=currency)
    )
    assert answer.status_code == 200
    return order, await payment_of(client, customer, payment["id"])


def _resolve(client: httpx.AsyncClient, staff: dict[str, str], payment_id: str, **body: Any) -> Any:
    return client.post(f"/api/v1/payments/{payment_id}/resolve", json=body, headers=staff)


async def _resolutions(runtime: Runtime, payment_id: str) -> list[PaymentResolution]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(PaymentResolution)
            .where(PaymentResolution.payment_id == uuid.UUID(payment_id))
            .order_by(PaymentResolution.created_at)
        )
        return list(rows)


async def _refunds(runtime: Runtime, payment_id: str) -> list[Refund]:
    async with runtime.db.session() as session:
        rows = await session.scalars(
            select(Refund).where(Refund.payment_id == uuid.UUID(payment_id))
        )
        return list(rows)


async def test_staff_list_payments_filtered_and_paged_customers_may_not(
    client: httpx.AsyncClient,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    _, review = await _in_review(client, customer_headers, new_order, reported=1)
    orders = [await new_order(customer_headers) for _ in range(3)]
    pending = [await start_payment(client, customer_headers, o["id"], "sandbox") for o in orders]
    assert review["reported_amount"] == {"amount": 1, "currency": "USD"}
    assert pending[0]["reported_amount"] is None

    queue = await client.get("/api/v1/payments?status=needs_review", headers=staff_headers)
    assert queue.status_code == 200, queue.text
    assert [p["id"] for p in queue.json()["items"]] == [review["id"]]
    by_order = await client.get(
        f"/api/v1/payments?order_id={orders[1]['id']}", headers=staff_headers
    )
    assert [p["id"] for p in by_order.json()["items"]] == [pending[1]["id"]]
    assert (await client.get("/api/v1/payments?provider=stripe", headers=staff_headers)).json()[
        "items"
    ] == []
    after = pending[0]["created_at"]
    since = await client.get(
        "/api/v1/payments", params={"created_after": after}, headers=staff_headers
    )
    assert {p["id"] for p in since.json()["items"]} == {p["id"] for p in pending}
    before = await client.get(
        "/api/v1/payments", params={"created_before": after}, headers=staff_headers
    )
    assert [p["id"] for p in before.json()["items"]] == [review["id"]]

    seen: list[str] = []
    url = "/api/v1/payments?limit=3"
    while url:
        page = (await client.get(url, headers=staff_headers)).json()
        seen += [p["id"] for p in page["items"]]
        url = (
            f"/api/v1/payments?limit=3&cursor={page['next_cursor']}" if page["next_cursor"] else ""
        )
    assert seen == [p["id"] for p in reversed(pending)] + [review["id"]]

    forbidden = await client.get("/api/v1/payments", headers=customer_headers)
    assert forbidden.status_code == 403 and problem_slug(forbidden) == "permission-denied"
    assert (await client.get("/api/v1/payments")).status_code == 401
    bad_cursor = await client.get("/api/v1/payments?cursor=%%%", headers=staff_headers)
    assert bad_cursor.status_code == 422 and problem_slug(bad_cursor) == "invalid-cursor"
    bad_status = await client.get("/api/v1/payments?status=lost", headers=staff_headers)
    assert bad_status.status_code == 422 and problem_slug(bad_status) == "validation-error"


async def test_accept_pays_the_order_once_for_the_reported_amount_and_is_kept(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    order_total_plus = 2_600  # the order is 2,500; the buyer's wallet rounded up
    order, payment = await _in_review(
        client, customer_headers, new_order, reported=order_total_plus
    )
    accepted = await _resolve(
        client, staff_headers, payment["id"], action="accept", note="customer tipped"
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "succeeded"
    assert accepted.json()["amount"] == {"amount": order_total_plus, "currency": "USD"}
    assert await order_status(client, customer_headers, order["id"]) == "paid"

    again = await _resolve(client, staff_headers, payment["id"], action="accept")
    assert again.status_code == 200 and again.json()["status"] == "succeeded"
    refund = await _resolve(client, staff_headers, payment["id"], action="refund")
    assert refund.status_code == 409 and problem_slug(refund) == "payment-not-in-review"
    assert refund.json()["resolved_with"] == "accept"
    assert await paid_transitions(runtime, order["id"]) == 1
    [kept] = await _resolutions(runtime, payment["id"])
    assert (kept.action, kept.outcome, kept.note) == ("accept", "order-paid", "customer tipped")
    assert kept.actor_id is not None and kept.amount == order_total_plus
    assert await _refunds(runtime, payment["id"]) == []
    # The money held can be refunded like any captured payment, in full.
    full = await client.post(
        f"/api/v1/payments/{payment['id']}/refunds",
        json={"reason": "customer changed their mind"},
        headers={**staff_headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert full.status_code == 201, full.text
    assert full.json()["amount"]["amount"] == order_total_plus
    assert full.json()["reason"] == "customer changed their mind"


async def test_refund_returns_exactly_what_the_provider_reported(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    order, payment = await _in_review(client, customer_headers, new_order, reported=77)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"action": "refund", "reason": "amount did not match the order"}
    first = await client.post(
        f"/api/v1/payments/{payment['id']}/resolve", json=body, headers={**staff_headers, **key}
    )
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "refunded"
    replay = await client.post(
        f"/api/v1/payments/{payment['id']}/resolve", json=body, headers={**staff_headers, **key}
    )
    assert replay.status_code == 200 and replay.json() == first.json()
    [refund] = await _refunds(runtime, payment["id"])
    assert (refund.amount, refund.currency, refund.status) == (77, "USD", "succeeded")
    assert refund.reason == "amount did not match the order"
    assert await order_status(client, customer_headers, order["id"]) == "pending_payment"
    accept = await _resolve(client, staff_headers, payment["id"], action="accept")
    assert accept.status_code == 409 and problem_slug(accept) == "payment-not-in-review"
    [kept] = await _resolutions(runtime, payment["id"])
    assert (kept.action, kept.outcome, kept.amount) == ("refund", "refunded", 77)


async def test_every_refusal_is_a_clear_problem(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    order = await new_order(customer_headers)
    pending = await start_payment(client, customer_headers, order["id"], "sandbox")
    not_in_review = await _resolve(client, staff_headers, pending["id"], action="accept")
    assert not_in_review.status_code == 409
    assert problem_slug(not_in_review) == "payment-not-in-review"
    assert not_in_review.json()["payment_status"] == "pending"
    unknown = await _resolve(client, staff_headers, str(uuid.uuid4()), action="accept")
    assert unknown.status_code == 404 and problem_slug(unknown) == "payment-not-found"
    bad_action = await _resolve(client, staff_headers, pending["id"], action="ignore")
    assert bad_action.status_code == 422 and problem_slug(bad_action) == "validation-error"
    customer = await _resolve(client, customer_headers, pending["id"], action="accept")
    assert customer.status_code == 403 and problem_slug(customer) == "permission-denied"
    reader = await make_user(runtime)
    assert (await _resolve(client, reader, pending["id"], action="accept")).status_code == 403
    long_key = {**staff_headers, "Idempotency-Key": "k" * 300}
    too_long = await client.post(
        f"/api/v1/payments/{pending['id']}/resolve", json={"action": "accept"}, headers=long_key
    )
    assert too_long.status_code == 400 and problem_slug(too_long) == "invalid-idempotency-key"

    _, euros = await _in_review(client, customer_headers, new_order, reported=2_500, currency="EUR")
    other_currency = await _resolve(client, staff_headers, euros["id"], action="accept")
    assert other_currency.status_code == 409
    assert problem_slug(other_currency) == "reported-currency-differs"
    refunded = await _resolve(client, staff_headers, euros["id"], action="refund")
    assert refunded.status_code == 200, refunded.text
    [refund] = await _refunds(runtime, euros["id"])
    assert (refund.amount, refund.currency) == (2_500, "EUR")


async def test_a_refund_the_provider_refuses_leaves_the_payment_in_review(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
    fake_stripe: FakeStripe,
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "stripe")
    intent = fake_stripe.capture(payment["provider_reference"])
    intent["amount_received"] = intent["amount"] - 100  # the buyer's bank sent less
    body = fake_stripe.event("payment_intent.succeeded", intent)
    assert (await deliver(client, "stripe", fake_stripe.signed_headers(body), body)).is_success
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "needs_review"

    intent["status"] = "requires_payment_method"  # Stripe no longer has the charge to refund
    refused = await _resolve(client, staff_headers, payment["id"], action="refund")
    assert refused.status_code == 502 and problem_slug(refused) == "provider-error"
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "needs_review"

    intent["status"] = "succeeded"
    retried = await _resolve(client, staff_headers, payment["id"], action="refund")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "refunded"
    refunds = sorted((r.status, r.amount) for r in await _refunds(runtime, payment["id"]))
    assert refunds == [("failed", intent["amount"] - 100), ("succeeded", intent["amount"] - 100)]
    outcomes = [r.outcome for r in await _resolutions(runtime, payment["id"])]
    assert outcomes == ["failed", "refunded"]


async def test_concurrent_resolves_and_callbacks_apply_exactly_one_decision(
    client: httpx.AsyncClient,
    runtime: Runtime,
    settings: Settings,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
    server_factory: Callable[..., Any],
) -> None:
    """Two server processes; staff press accept and refund many times at once while the
    provider re-delivers its callbacks (the mismatched one and a correct-looking success)."""
    bases = await asyncio.gather(server_factory(settings), server_factory(settings))
    for round_number in range(3):
        order, payment = await _in_review(client, customer_headers, new_order, reported=999)
        mismatched = sandbox_callback(payment, amount=999)
        looks_right = sandbox_callback(payment)
        url = f"/api/v1/payments/{payment['id']}/resolve"
        async with httpx.AsyncClient(timeout=30) as http:
            requests = [
                http.post(
                    bases[n % 2] + url,
                    json={"action": "accept" if (n + round_number) % 2 else "refund"},
                    headers=staff_headers,
                )
                for n in range(12)
            ] + [
                http.post(
                    f"{bases[n % 2]}/api/v1/payments/webhooks/sandbox",
                    headers=callback[0],
                    content=callback[1],
                )
                for n, callback in enumerate([mismatched, looks_right] * 3)
            ]
            answers = await asyncio.gather(*requests)
        resolves, callbacks = answers[:12], answers[12:]
        assert all(answer.status_code == 200 for answer in callbacks)
        decided = [r for r in await _resolutions(runtime, payment["id"]) if r.outcome != "failed"]
        assert len(decided) == 1
        winner = decided[0].action
        for answer in resolves:
            assert answer.status_code in (200, 409), answer.text
            if answer.status_code == 409:
                assert problem_slug(answer) == "payment-not-in-review"
                assert answer.json()["resolved_with"] == winner
        final = await payment_of(client, staff_headers, payment["id"])
        refunds = await _refunds(runtime, payment["id"])
        if winner == "accept":
            assert final["status"] == "succeeded"
            assert await order_status(client, customer_headers, order["id"]) == "paid"
            assert await paid_transitions(runtime, order["id"]) == 1
            assert refunds == []
        else:
            assert final["status"] == "refunded"
            assert await order_status(client, customer_headers, order["id"]) == "pending_payment"
            assert [(r.amount, r.status) for r in refunds] == [(999, "succeeded")]
    async with runtime.db.session() as session:
        total = await session.scalar(select(func.count()).select_from(PaymentResolution))
    assert total == 3
