"""Each provider end to end over HTTP: order -> payment -> the provider's signed callback ->
paid order and "payment received" mail -> refunds through the provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import httpx

from shopkeeper.core.runtime import Runtime
from tests.shop.payments.conftest import OrderFactory, order_status, payment_of, start_payment
from tests.shop.payments.fakes.alipay_fake import FakeAlipay
from tests.shop.payments.fakes.stripe_fake import FakeStripe
from tests.shop.payments.fakes.wechatpay_fake import FakeWechatPay
from tests.shop.payments.helpers import deliver, mails, paid_transitions, refund_headers


async def test_stripe_payment_intent_to_paid_order_and_refunds(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
    fake_stripe: FakeStripe,
    drained: Any,
) -> None:
    order = await new_order(customer_headers, price=1_250, quantity=2)
    payment = await start_payment(client, customer_headers, order["id"], "stripe")
    intent = fake_stripe.intents[payment["provider_reference"]]
    assert payment["status"] == "pending"
    assert payment["amount"] == order["total"] and intent["amount"] == order["total"]["amount"]
    assert payment["action"] == {"type": "client_secret", "value": intent["client_secret"]}

    body = fake_stripe.event("payment_intent.succeeded", fake_stripe.capture(intent["id"]))
    answer = await deliver(client, "stripe", fake_stripe.signed_headers(body), body)
    assert answer.status_code == 200 and answer.json() == {"received": True}
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "succeeded"
    assert await order_status(client, customer_headers, order["id"]) == "paid"
    await drained()
    assert await mails(runtime, "payment_received") == [order["email"]]

    total = order["total"]["amount"]
    fake_stripe.refund_status = "pending"  # Stripe confirms this one later, by webhook
    try:
        partial = await client.post(
            f"/api/v1/payments/{payment['id']}/refunds",
            headers=refund_headers(staff_headers),
            json={"amount": 1_000},
        )
    finally:
        fake_stripe.refund_status = "succeeded"
    assert partial.status_code == 201, partial.text
    assert partial.json()["status"] == "pending"
    assert partial.json()["provider_reference"] in fake_stripe.refunds
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "succeeded"
    charge = {"id": "ch_1", "object": "charge", "payment_intent": intent["id"],
              "amount_refunded": 1_000, "currency": "usd"}  # fmt: skip
    confirmation = fake_stripe.event("charge.refunded", charge)
    ok = await deliver(client, "stripe", fake_stripe.signed_headers(confirmation), confirmation)
    assert ok.status_code == 200
    paid_part = await payment_of(client, staff_headers, payment["id"])
    assert paid_part["status"] == "partially_refunded"
    assert await order_status(client, customer_headers, order["id"]) == "partially_refunded"

    too_much = await client.post(
        f"/api/v1/payments/{payment['id']}/refunds",
        headers=refund_headers(staff_headers),
        json={"amount": total},
    )
    assert too_much.status_code == 409
    assert too_much.json()["type"].endswith("/refund-exceeds-captured")

    rest = await client.post(
        f"/api/v1/payments/{payment['id']}/refunds", headers=refund_headers(staff_headers), json={}
    )
    assert rest.status_code == 201 and rest.json()["amount"]["amount"] == total - 1_000
    final = await payment_of(client, staff_headers, payment["id"])
    assert final["status"] == "refunded" and final["refunded"]["amount"] == total
    assert await order_status(client, customer_headers, order["id"]) == "refunded"
    again = await client.post(
        f"/api/v1/payments/{payment['id']}/refunds", headers=refund_headers(staff_headers), json={}
    )
    assert again.status_code == 409 and again.json()["type"].endswith("/refund-exceeds-captured")

    # Stripe's confirmation of refunds we already know succeeded changes nothing.
    charge["amount_refunded"] = total
    confirmation = fake_stripe.event("charge.refunded", charge)
    ok = await deliver(client, "stripe", fake_stripe.signed_headers(confirmation), confirmation)
    assert ok.status_code == 200
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "refunded"


async def test_alipay_page_pay_notification_pays_once(
    client: httpx.AsyncClient,
    runtime: Runtime,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
    fake_alipay: FakeAlipay,
) -> None:
    order = await new_order(customer_headers, price=4_400, quantity=1)
    payment = await start_payment(client, customer_headers, order["id"], "alipay")
    assert payment["action"]["type"] == "redirect"
    trade = fake_alipay.open_page(payment["action"]["value"])
    assert trade["out_trade_no"] == payment["provider_reference"]
    assert trade["notify_url"].endswith("/api/v1/payments/webhooks/alipay")
    fake_alipay.pay(trade["out_trade_no"])

    fields = fake_alipay.notification(trade["out_trade_no"])
    notify = fake_alipay.sign_notification(fields)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    first = await deliver(client, "alipay", form, notify)
    assert (first.status_code, first.text) == (200, "success")
    replay = await deliver(client, "alipay", form, notify)
    assert replay.text == "success"
    assert await order_status(client, customer_headers, order["id"]) == "paid"
    assert await paid_transitions(runtime, order["id"]) == 1

    changed = dict(parse_qsl(notify.decode()))
    changed["total_amount"] = "0.01"
    from urllib.parse import urlencode

    forged = await deliver(client, "alipay", form, urlencode(changed).encode())
    assert forged.text == "failure"
    refund = await client.post(
        f"/api/v1/payments/{payment['id']}/refunds",
        headers=refund_headers(staff_headers),
        json={"amount": 400},
    )
    assert refund.status_code == 201 and refund.json()["status"] == "succeeded"
    assert str(fake_alipay.trades[trade["out_trade_no"]]["refunded"]) == "4.00"


async def test_wechatpay_native_notification_pays_and_refund_goes_through(
    client: httpx.AsyncClient,
    customer_headers: dict[str, str],
    staff_headers: dict[str, str],
    new_order: OrderFactory,
    fake_wechatpay: FakeWechatPay,
) -> None:
    order = await new_order(customer_headers, price=3_000, quantity=1)
    payment = await start_payment(client, customer_headers, order["id"], "wechatpay")
    assert payment["action"]["type"] == "qr_code"
    assert payment["action"]["value"].startswith("weixin://wxpay/bizpayurl")
    fake_wechatpay.pay(payment["provider_reference"])

    headers, body = fake_wechatpay.notification(
        fake_wechatpay.paid_resource(payment["provider_reference"])
    )
    answer = await deliver(client, "wechatpay", headers, body)
    assert answer.status_code == 204
    assert (await payment_of(client, customer_headers, payment["id"]))["status"] == "succeeded"
    assert await order_status(client, customer_headers, order["id"]) == "paid"

    fake_wechatpay.refund_status = "PROCESSING"  # confirmed later by REFUND.SUCCESS
    try:
        refund = await client.post(
            f"/api/v1/payments/{payment['id']}/refunds",
            headers=refund_headers(staff_headers),
            json={},
        )
    finally:
        fake_wechatpay.refund_status = "SUCCESS"
    assert refund.status_code == 201, refund.text
    assert refund.json()["status"] == "pending"
    provider_refund = fake_wechatpay.refunds[refund.json()["provider_reference"]]
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "succeeded"

    resource = {"mchid": "1900000109", "out_trade_no": payment["provider_reference"],
                "out_refund_no": provider_refund["out_refund_no"], "refund_status": "SUCCESS",
                "amount": {"refund": order["total"]["amount"], "total": order["total"]["amount"],
                           "payer_refund": order["total"]["amount"], "payer_total": 1}}  # fmt: skip
    headers, body = fake_wechatpay.notification(resource, event_type="REFUND.SUCCESS")
    assert (await deliver(client, "wechatpay", headers, body)).status_code == 204
    assert (await payment_of(client, staff_headers, payment["id"]))["status"] == "refunded"
    assert await order_status(client, customer_headers, order["id"]) == "refunded"
