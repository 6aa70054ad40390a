"""The callback guarantees of API.md: verify first, apply at most once, never downgrade,
mismatches held for review, late successes refunded, every delivery recorded."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import REGISTRY
from sqlalchemy import select

from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.orders import service as orders_service
from shopkeeper.shop.payments.jobs import reconcile_pending_payments
from shopkeeper.shop.payments.models import PaymentCallback
from tests.conftest import register_and_login
from tests.shop.payments.conftest import OrderFactory, order_status, payment_of, start_payment
from tests.shop.payments.fakes.alipay_fake import FakeAlipay
from tests.shop.payments.fakes.stripe_fake import FakeStripe
from tests.shop.payments.fakes.wechatpay_fake import FakeWechatPay
from tests.shop.payments.helpers import (
    callbacks_recorded,
    deliver,
    mails,
    paid_transitions,
    refund_headers,
    sandbox_callback,
)


async def test_rejected_callbacks_change_nothing_and_are_recorded(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
    fake_stripe: FakeStripe,
    fake_alipay: FakeAlipay,
    fake_wechatpay: FakeWechatPay,
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    forged = sandbox_callback(payment, secret="not-the-secret")
    stale = sandbox_callback(payment, timestamp=int(time.time()) - 301)
    good_headers, good_body = sandbox_callback(payment)
    tampered_after_signing = good_body.replace(b'"amount": ', b'"amount": 1')
    attempts = [
        ("sandbox", *forged),
        ("sandbox", *stale),
        ("sandbox", good_headers, tampered_after_signing),
        ("sandbox", {"Content-Type": "application/json"}, good_body),
        ("sandbox", good_headers, b"{not json"),
        ("sandbox", {"Shopkeeper-Signature": "t=1,v1="}, b""),
        ("stripe", {"Stripe-Signature": "t=1,v1=00"}, b'{"id": "evt_1"}'),
        ("alipay", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&sign=AAAA"),
        ("wechatpay", {"Content-Type": "application/json"}, b"[]"),
    ]

    def rejected_total() -> float:
        return sum(
            sample.value
            for metric in REGISTRY.collect()
            if metric.name == "shopkeeper_callbacks_rejected"
            for sample in metric.samples
            if sample.name.endswith("_total")
        )

    rejected_before = rejected_total()
    for provider, headers, body in attempts:
        answer = await deliver(client, provider, headers, body)
        assert answer.status_code >= 400 or answer.text == "failure", (provider, answer.text)
    sandbox_answer = await deliver(client, "sandbox", *forged)
    assert sandbox_answer.json()["type"].endswith("/invalid-signature")
    assert rejected_total() - rejected_before == len(attempts) + 1

    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "pending"
    assert await order_status(client, customer_headers, order["id"]) == "pending_payment"
    assert await callbacks_recorded(runtime, verified=False) == len(attempts) + 1
    assert await callbacks_recorded(runtime, verified=True) == 0
    async with runtime.db.session() as session:
        rows = list(await session.scalars(select(PaymentCallback)))
    assert all(row.result == "rejected" and row.detail for row in rows)
    assert not any("sign" in (row.payload.get("form") or {}) for row in rows)


async def test_amount_mismatch_needs_review_and_order_stays_unpaid(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    answer = await deliver(client, "sandbox", *sandbox_callback(payment, amount=1))
    assert answer.status_code == 200
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "needs_review"
    currency = await deliver(client, "sandbox", *sandbox_callback(payment, currency="EUR"))
    assert currency.status_code == 200
    # A correct success afterwards does not override the review either.
    await deliver(client, "sandbox", *sandbox_callback(payment))
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "needs_review"
    assert await order_status(client, customer_headers, order["id"]) == "pending_payment"


async def test_duplicates_apply_once_and_late_failure_keeps_success(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
    drained: Any,
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    success = sandbox_callback(payment, event_id="evt_success")
    for _ in range(3):
        answer = await deliver(client, "sandbox", *success)
        assert answer.json() == {"received": True}
    failure = await deliver(client, "sandbox", *sandbox_callback(payment, kind="payment.failed"))
    assert failure.status_code == 200
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "succeeded"
    assert await order_status(client, customer_headers, order["id"]) == "paid"
    assert await paid_transitions(runtime, order["id"]) == 1
    await drained()
    assert len(await mails(runtime, "payment_received")) == 1
    async with runtime.db.session() as session:
        results = sorted(r.result for r in await session.scalars(select(PaymentCallback)))
    assert results == ["duplicate", "duplicate", "kept-succeeded", "succeeded"]


async def test_success_after_the_order_expired_is_refunded_automatically(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
    drained: Any,
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    async with runtime.db.session() as session:
        from datetime import datetime

        deadline = datetime.fromisoformat(order["expires_at"]) + timedelta(seconds=1)
        assert await orders_service.expire_order(
            session, order_id=uuid.UUID(order["id"]), now=deadline
        )
    answer = await deliver(client, "sandbox", *sandbox_callback(payment))
    assert answer.status_code == 200
    assert await order_status(client, customer_headers, order["id"]) == "expired"
    await drained()
    refunded = await payment_of(client, customer_headers, payment["id"])
    assert refunded["status"] == "refunded"
    assert refunded["refunded"] == payment["amount"]
    assert await order_status(client, customer_headers, order["id"]) == "expired"
    assert await mails(runtime, "payment_received") == []
    await drained()  # the handler running again refunds nothing more
    assert (await payment_of(client, customer_headers, payment["id"]))["refunded"] == payment[
        "amount"
    ]


async def test_cancelling_a_paid_order_refunds_the_payment(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
    drained: Any,
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    await deliver(client, "sandbox", *sandbox_callback(payment))
    cancelled = await client.post(f"/api/v1/orders/{order['id']}/cancel", headers=customer_headers)
    assert cancelled.status_code == 200, cancelled.text
    await drained()
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "refunded"
    assert await order_status(client, customer_headers, order["id"]) == "cancelled"
    assert len(await mails(runtime, "refund_issued")) == 1


async def test_one_payment_in_flight_per_order_and_idempotent_creation(
    client: httpx.AsyncClient,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
    fake_stripe: FakeStripe,
) -> None:
    order = await new_order(customer_headers)
    url = f"/api/v1/orders/{order['id']}/payments"
    headers = {**customer_headers, "Idempotency-Key": "pay-once"}
    first = await client.post(url, headers=headers, json={"provider": "sandbox"})
    replay = await client.post(url, headers=headers, json={"provider": "sandbox"})
    assert first.status_code == replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.json() == first.json()
    second = await client.post(
        url, headers={**customer_headers, "Idempotency-Key": "other"}, json={"provider": "stripe"}
    )
    assert second.status_code == 409 and second.json()["payment_id"] == first.json()["id"]
    assert second.json()["type"].endswith("/payment-in-progress")

    stranger = await register_and_login(client)
    hidden = await client.get(f"/api/v1/payments/{first.json()['id']}", headers=stranger)
    assert hidden.status_code == 404
    assert (
        await client.get(f"/api/v1/payments/{first.json()['id']}", headers=staff_headers)
    ).status_code == 200
    not_staff = await client.post(
        f"/api/v1/payments/{first.json()['id']}/refunds",
        headers=refund_headers(customer_headers),
        json={},
    )
    assert not_staff.status_code == 403
    sandbox_hidden = await client.post(
        f"/api/v1/payments/{first.json()['id']}/sandbox/succeed", headers=stranger
    )
    assert sandbox_hidden.status_code == 404
    bad_outcome = await client.post(
        f"/api/v1/payments/{first.json()['id']}/sandbox/maybe", headers=customer_headers
    )
    assert bad_outcome.status_code == 422
    other_order = await new_order(customer_headers)
    stripe_payment = await start_payment(client, customer_headers, other_order["id"], "stripe")
    not_sandbox = await client.post(
        f"/api/v1/payments/{stripe_payment['id']}/sandbox/succeed", headers=customer_headers
    )
    assert not_sandbox.status_code == 409
    assert not_sandbox.json()["type"].endswith("/not-a-sandbox-payment")
    unknown = await client.post(url, headers={**customer_headers, "Idempotency-Key": "x"},
                                json={"provider": "paypal"})  # fmt: skip
    assert unknown.status_code == 422


async def test_reconciliation_applies_what_the_provider_knows(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    new_order: OrderFactory,
    fake_stripe: FakeStripe,
    fake_wechatpay: FakeWechatPay,
) -> None:
    paid_order = await new_order(customer_headers)
    stripe_payment = await start_payment(client, customer_headers, paid_order["id"], "stripe")
    open_order = await new_order(customer_headers)
    wechat_payment = await start_payment(client, customer_headers, open_order["id"], "wechatpay")
    fake_stripe.capture(stripe_payment["provider_reference"])  # its webhook never arrives

    results = await reconcile_pending_payments(runtime, older_than=timedelta(0))
    assert results == {stripe_payment["id"]: "succeeded"}
    assert await order_status(client, customer_headers, paid_order["id"]) == "paid"
    assert (await payment_of(client, customer_headers, wechat_payment["id"]))["status"] == "pending"
    assert await reconcile_pending_payments(runtime, older_than=timedelta(0)) == {}
    assert await paid_transitions(runtime, paid_order["id"]) == 1


async def test_a_paid_order_is_not_payable_again(
    client: httpx.AsyncClient, customer_headers: dict[str, str], new_order: OrderFactory
) -> None:
    order = await new_order(customer_headers)
    payment = await start_payment(client, customer_headers, order["id"], "sandbox")
    await deliver(client, "sandbox", *sandbox_callback(payment))
    again = await client.post(
        f"/api/v1/orders/{order['id']}/payments",
        headers={**customer_headers, "Idempotency-Key": "again"},
        json={"provider": "sandbox"},
    )
    assert again.status_code == 409 and again.json()["type"].endswith("/order-not-payable")
