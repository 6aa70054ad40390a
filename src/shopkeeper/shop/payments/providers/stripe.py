"""Stripe: PaymentIntents through the official library; webhooks in Stripe's signature scheme."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import stripe
from starlette.responses import JSONResponse, Response

from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.providers.base import (
    TIMESTAMP_TOLERANCE_SECONDS,
    CallbackEvent,
    CallbackOutcome,
    CallbackRejected,
    Charge,
    CreatedPayment,
    ProviderError,
    RefundResult,
    RemoteStatus,
    header,
    secret_text,
)

_OUTCOMES: dict[str, CallbackOutcome] = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "charge.refunded": "refunded",
}
# Card details and wallets never reach our audit table.
_AUDITED_FIELDS = ("id", "object", "amount", "amount_received", "amount_refunded", "currency",
                   "status", "payment_intent", "metadata")  # fmt: skip


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        self._webhook_secret = secret_text(settings.stripe_webhook_secret, "stripe_webhook_secret")
        self._client = stripe.StripeClient(
            secret_text(settings.stripe_api_key, "stripe_api_key"),
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
            http_client=stripe.HTTPXClient(),
            max_network_retries=2,
        )

    async def create_payment(self, charge: Charge) -> CreatedPayment:
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params={
                    "amount": charge.amount,
                    "currency": charge.currency.lower(),
                    "description": charge.description,
                    "metadata": {"payment_id": str(charge.payment_id)},
                    "automatic_payment_methods": {"enabled": True},
                },
                # Stripe deduplicates a retried create under the same key.
                options={"idempotency_key": f"payment-{charge.payment_id}"},
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {type(exc).__name__}") from exc
        return CreatedPayment(
            provider_reference=intent.id,
            action_type="client_secret",
            action_value=intent.client_secret,
        )

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> CallbackEvent:
        try:
            stripe.WebhookSignature.verify_header(
                body.decode("utf-8", "replace"),
                header(headers, "Stripe-Signature"),
                self._webhook_secret,
                TIMESTAMP_TOLERANCE_SECONDS,
            )
        except stripe.SignatureVerificationError as exc:
            reason = "stale-timestamp" if "tolerance" in str(exc) else "invalid-signature"
            raise CallbackRejected(reason, str(exc.user_message or reason)) from exc
        try:
            event = json.loads(body)
            kind = str(event["type"])
            event_id = str(event["id"])
            obj: dict[str, Any] = event["data"]["object"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected("malformed-body", "Not a Stripe event") from exc
        outcome = _OUTCOMES.get(kind, "ignored")
        summary = {
            "id": event_id,
            "type": kind,
            "object": {key: obj.get(key) for key in _AUDITED_FIELDS if key in obj},
        }
        if outcome == "ignored":
            return CallbackEvent(
                event_key=event_id, outcome=outcome, reference=None, summary=summary
            )
        try:
            if kind == "charge.refunded":
                reference = str(obj["payment_intent"])
                amount = int(obj["amount_refunded"])
            else:
                reference = str(obj["id"])
                amount = (
                    int(obj["amount_received"] or obj["amount"])
                    if outcome == "succeeded"
                    else int(obj["amount"])
                )
            currency = str(obj["currency"]).upper()
        except (KeyError, TypeError, ValueError) as exc:
            raise CallbackRejected("malformed-body", f"{kind} without its fields") from exc
        return CallbackEvent(
            event_key=event_id,
            outcome=outcome,
            reference=reference,
            amount=amount,
            currency=currency,
            summary=summary,
        )

    def respond(self, rejection: CallbackRejected | None) -> Response:
        if rejection is None:
            return JSONResponse({"received": True})
        return JSONResponse({"error": rejection.reason}, status_code=400)

    async def refund(
        self, *, reference: str, refund_id: uuid.UUID, amount: int, total: int, currency: str
    ) -> RefundResult:
        try:
            refund = await self._client.v1.refunds.create_async(
                params={"payment_intent": reference, "amount": amount},
                options={"idempotency_key": f"refund-{refund_id}"},
            )
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {type(exc).__name__}") from exc
        if refund.status in {"failed", "canceled"}:
            raise ProviderError(f"stripe refund {refund.status}")
        return RefundResult(reference=refund.id, succeeded=refund.status == "succeeded")

    async def query(self, *, reference: str, currency: str) -> RemoteStatus | None:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(reference)
        except stripe.StripeError as exc:
            raise ProviderError(f"stripe: {type(exc).__name__}") from exc
        if intent.status == "succeeded":
            return RemoteStatus("succeeded", intent.amount_received, intent.currency.upper())
        if intent.status == "canceled":
            return RemoteStatus("failed", intent.amount, intent.currency.upper())
        return RemoteStatus("pending", intent.amount, intent.currency.upper())
