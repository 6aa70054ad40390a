"""The provider layer against each provider's local fake, with no database: create, verify and
parse callbacks (made by the providers' own signing code), refund, query."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.providers import build_provider
from shopkeeper.shop.payments.providers.base import CallbackRejected, Charge, ProviderError
from shopkeeper.shop.payments.providers.sandbox import SandboxProvider, sign
from tests.conftest import make_settings
from tests.shop.payments.conftest import SANDBOX_SECRET
from tests.shop.payments.fakes.alipay_fake import FakeAlipay
from tests.shop.payments.fakes.http import FakeRequest, FakeResponse, FakeServer
from tests.shop.payments.fakes.stripe_fake import FakeStripe
from tests.shop.payments.fakes.wechatpay_fake import FakeWechatPay


def charge(amount: int = 2_500, currency: str = "USD") -> Charge:
    payment_id = uuid.uuid4()
    return Charge(
        payment_id=payment_id,
        reference=payment_id.hex,
        amount=amount,
        currency=currency,
        description="Order SK-1001",
        notify_url="https://shop.example/api/v1/payments/webhooks/x",
        return_url="https://shop.example/orders/1",
    )


def now() -> datetime:
    return datetime.now(UTC)


def rejection_of(
    provider_name: str, settings: Settings, headers: dict[str, str], body: bytes
) -> str:
    provider = build_provider(provider_name, settings)
    with pytest.raises(CallbackRejected) as caught:
        provider.parse_callback(headers, body, now())
    return caught.value.reason


# --- sandbox -----------------------------------------------------------------------------------


def sandbox_body(**data: object) -> bytes:
    event = {"id": "evt_1", "type": "payment.succeeded", "created": int(time.time()),
             "data": {"reference": "abc", "amount": 100, "currency": "USD", **data}}  # fmt: skip
    return json.dumps(event).encode()


def test_sandbox_accepts_its_own_signature_and_rejects_forgery_and_staleness(
    offline_settings: Settings,
) -> None:
    provider = SandboxProvider(offline_settings)
    body = sandbox_body()
    good = {"Shopkeeper-Signature": sign(SANDBOX_SECRET, int(time.time()), body)}
    event = provider.parse_callback(good, body, now())
    assert (event.event_key, event.outcome, event.reference, event.amount) == (
        "evt_1", "succeeded", "abc", 100,
    )  # fmt: skip

    forged = {"Shopkeeper-Signature": sign("another-secret", int(time.time()), body)}
    assert rejection_of("sandbox", offline_settings, forged, body) == "invalid-signature"
    stale = {"Shopkeeper-Signature": sign(SANDBOX_SECRET, int(time.time()) - 301, body)}
    assert rejection_of("sandbox", offline_settings, stale, body) == "stale-timestamp"
    tampered = sandbox_body(amount=1)
    assert rejection_of("sandbox", offline_settings, good, tampered) == "invalid-signature"
    assert rejection_of("sandbox", offline_settings, {}, body) == "invalid-signature"
    garbage = b"not json"
    signed_garbage = {"Shopkeeper-Signature": sign(SANDBOX_SECRET, int(time.time()), garbage)}
    assert rejection_of("sandbox", offline_settings, signed_garbage, garbage) == "malformed-body"
    response = provider.respond(CallbackRejected("invalid-signature"))
    assert response.status_code == 400 and b"invalid-signature" in response.body


# --- Stripe ------------------------------------------------------------------------------------


async def test_stripe_payment_intent_callback_refund_and_query(
    offline_settings: Settings, fake_stripe: FakeStripe
) -> None:
    provider = build_provider("stripe", offline_settings)
    created = await provider.create_payment(charge(2_500, "USD"))
    intent = fake_stripe.intents[created.provider_reference]
    assert created.action_type == "client_secret"
    assert created.action_value == intent["client_secret"]
    assert (intent["amount"], intent["currency"]) == (2_500, "usd")

    pending = await provider.query(reference=intent["id"], currency="USD")
    assert pending is not None and pending.outcome == "pending"
    fake_stripe.capture(intent["id"])
    body = fake_stripe.event("payment_intent.succeeded", intent)
    event = provider.parse_callback(fake_stripe.signed_headers(body), body, now())
    assert (event.outcome, event.reference, event.amount, event.currency) == (
        "succeeded", intent["id"], 2_500, "USD",
    )  # fmt: skip
    assert "client_secret" not in json.dumps(event.summary)

    refund = await provider.refund(
        reference=intent["id"], refund_id=uuid.uuid4(), amount=1_000, total=2_500, currency="USD"
    )
    assert refund.succeeded and refund.reference in fake_stripe.refunds
    with pytest.raises(ProviderError):
        await provider.refund(
            reference=intent["id"], refund_id=uuid.uuid4(), amount=2_000, total=2_500,
            currency="USD",
        )  # fmt: skip
    paid = await provider.query(reference=intent["id"], currency="USD")
    assert paid is not None and (paid.outcome, paid.amount) == ("succeeded", 2_500)


async def test_stripe_rejects_forged_stale_and_malformed_events(
    offline_settings: Settings, fake_stripe: FakeStripe
) -> None:
    provider = build_provider("stripe", offline_settings)
    created = await provider.create_payment(charge())
    body = fake_stripe.event(
        "payment_intent.succeeded", fake_stripe.capture(created.provider_reference)
    )
    forged = fake_stripe.signed_headers(body, secret="whsec_" + "f" * 32)
    assert rejection_of("stripe", offline_settings, forged, body) == "invalid-signature"
    stale = fake_stripe.signed_headers(body, timestamp=int(time.time()) - 301)
    assert rejection_of("stripe", offline_settings, stale, body) == "stale-timestamp"
    tampered = body.replace(b'"amount": 2500', b'"amount": 1')
    assert tampered != body
    assert (
        rejection_of("stripe", offline_settings, fake_stripe.signed_headers(body), tampered)
        == "invalid-signature"
    )
    garbage = b'{"id": "evt_x"}'
    assert (
        rejection_of("stripe", offline_settings, fake_stripe.signed_headers(garbage), garbage)
        == "malformed-body"
    )
    with pytest.raises(CallbackRejected):
        provider.parse_callback({"Stripe-Signature": "t=abc,v1=zz"}, body, now())


# --- Alipay ------------------------------------------------------------------------------------


async def test_alipay_page_pay_notification_refund_and_query(
    offline_settings: Settings, fake_alipay: FakeAlipay
) -> None:
    provider = build_provider("alipay", offline_settings)
    payment = charge(8_800, "CNY")
    created = await provider.create_payment(payment)
    assert created.action_type == "redirect" and created.action_value
    fields = dict(parse_qsl(urlsplit(created.action_value).query))
    assert fields["notify_url"] == payment.notify_url and fields["sign_type"] == "RSA2"

    before = await provider.query(reference=payment.reference, currency="CNY")
    assert before is not None and before.outcome == "pending"
    trade = fake_alipay.open_page(created.action_value)  # checks our signature with the SDK
    assert trade["total_amount"] == "88.00"
    fake_alipay.pay(payment.reference)
    notify = fake_alipay.sign_notification(fake_alipay.notification(payment.reference))
    event = provider.parse_callback(
        {"content-type": "application/x-www-form-urlencoded"}, notify, now()
    )
    assert (event.outcome, event.reference, event.decimal_amount) == (
        "succeeded",
        payment.reference,
        "88.00",
    )
    assert "buyer_id" not in event.summary

    after = await provider.query(reference=payment.reference, currency="CNY")
    assert after is not None and (after.outcome, after.amount) == ("succeeded", 8_800)
    refund = await provider.refund(
        reference=payment.reference, refund_id=uuid.uuid4(), amount=800, total=8_800, currency="CNY"
    )
    assert refund.succeeded and fake_alipay.trades[payment.reference]["refunded"] == 8
    with pytest.raises(ProviderError):
        await provider.refund(
            reference=payment.reference, refund_id=uuid.uuid4(), amount=8_001, total=8_800,
            currency="CNY",
        )  # fmt: skip


async def test_alipay_rejects_changed_fields_wrong_app_and_unsigned_bodies(
    offline_settings: Settings, fake_alipay: FakeAlipay
) -> None:
    provider = build_provider("alipay", offline_settings)
    payment = charge(8_800, "CNY")
    fake_alipay.open_page((await provider.create_payment(payment)).action_value or "")
    fake_alipay.pay(payment.reference)
    fields = fake_alipay.notification(payment.reference)
    signed = dict(parse_qsl(fake_alipay.sign_notification(fields).decode()))

    replayed = {**signed, "total_amount": "0.01"}
    from urllib.parse import urlencode

    assert (
        rejection_of("alipay", offline_settings, {}, urlencode(replayed).encode())
        == "invalid-signature"
    )
    other_app = fake_alipay.sign_notification({**fields, "app_id": "2021999999999999"})
    assert rejection_of("alipay", offline_settings, {}, other_app) == "wrong-app-id"
    unsigned = urlencode(fields).encode()
    assert rejection_of("alipay", offline_settings, {}, unsigned) == "invalid-signature"
    assert rejection_of("alipay", offline_settings, {}, b"\xff\xfe") == "malformed-body"
    assert provider.respond(None).body == b"success"
    assert provider.respond(CallbackRejected("x")).body == b"failure"


# --- WeChat Pay ---------------------------------------------------------------------------------


async def test_wechatpay_native_pay_notification_refund_and_query(
    offline_settings: Settings, fake_wechatpay: FakeWechatPay
) -> None:
    provider = build_provider("wechatpay", offline_settings)
    payment = charge(8_800, "CNY")
    created = await provider.create_payment(payment)
    assert created.action_type == "qr_code"
    assert (created.action_value or "").startswith("weixin://wxpay/bizpayurl?pr=")
    pending = await provider.query(reference=payment.reference, currency="CNY")
    assert pending is not None and pending.outcome == "pending"

    fake_wechatpay.pay(payment.reference)
    headers, body = fake_wechatpay.notification(fake_wechatpay.paid_resource(payment.reference))
    event = provider.parse_callback(headers, body, now())
    assert (event.outcome, event.reference, event.amount, event.currency) == (
        "succeeded", payment.reference, 8_800, "CNY",
    )  # fmt: skip
    assert "payer" not in event.summary

    paid = await provider.query(reference=payment.reference, currency="CNY")
    assert paid is not None and (paid.outcome, paid.amount) == ("succeeded", 8_800)
    refund = await provider.refund(
        reference=payment.reference,
        refund_id=uuid.uuid4(),
        amount=8_800,
        total=8_800,
        currency="CNY",
    )
    assert refund.succeeded
    with pytest.raises(ProviderError):
        await provider.refund(
            reference=payment.reference, refund_id=uuid.uuid4(), amount=1, total=8_800,
            currency="CNY",
        )  # fmt: skip


async def test_wechatpay_rejects_forged_stale_undecryptable_and_foreign_notifications(
    offline_settings: Settings, fake_wechatpay: FakeWechatPay
) -> None:
    provider = build_provider("wechatpay", offline_settings)
    payment = charge(8_800, "CNY")
    await provider.create_payment(payment)
    fake_wechatpay.pay(payment.reference)
    resource = fake_wechatpay.paid_resource(payment.reference)

    headers, body = fake_wechatpay.notification(resource)
    tampered = body.replace(b"TRANSACTION.SUCCESS", b"TRANSACTION.SUCCES5")
    assert rejection_of("wechatpay", offline_settings, headers, tampered) == "invalid-signature"
    stale_headers, stale_body = fake_wechatpay.notification(
        resource, timestamp=int(time.time()) - 301
    )
    assert (
        rejection_of("wechatpay", offline_settings, stale_headers, stale_body) == "stale-timestamp"
    )
    wrong_key_headers, wrong_key_body = fake_wechatpay.notification(resource, key="f" * 32)
    assert (
        rejection_of("wechatpay", offline_settings, wrong_key_headers, wrong_key_body)
        == "undecryptable"
    )
    foreign_headers, foreign_body = fake_wechatpay.notification({**resource, "mchid": "1900000999"})
    assert (
        rejection_of("wechatpay", offline_settings, foreign_headers, foreign_body)
        == "wrong-merchant"
    )
    other_app_headers, other_app_body = fake_wechatpay.notification({**resource, "appid": "wx0"})
    assert (
        rejection_of("wechatpay", offline_settings, other_app_headers, other_app_body)
        == "wrong-app-id"
    )
    unknown_key = {**headers, "Wechatpay-Serial": "PUB_KEY_ID_OTHER"}
    assert rejection_of("wechatpay", offline_settings, unknown_key, body) == "unknown-key"
    assert rejection_of("wechatpay", offline_settings, {}, body) == "invalid-signature"


async def test_sandbox_delivery_retries_until_acknowledged(tmp_path: Path) -> None:
    answers = iter([500, 503, 200, 200])
    received: list[bytes] = []

    def webhook(request: FakeRequest) -> FakeResponse:
        received.append(request.body)
        assert request.path == "/api/v1/payments/webhooks/sandbox"
        signature = request.headers["shopkeeper-signature"]
        timestamp = int(signature.split(",")[0][2:])
        assert signature == sign(SANDBOX_SECRET, timestamp, request.body)
        return FakeResponse(next(answers))

    server = FakeServer(webhook).start()
    try:
        settings = make_settings(
            f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path, public_url=server.url
        )
        provider = SandboxProvider(settings)
        body = provider.build_event(outcome="succeed", reference="ref", amount=100, currency="USD")
        assert await provider.deliver(body, copies=1, first_delay=0.01) == 1
    finally:
        server.stop()
    assert received == [body, body, body]
