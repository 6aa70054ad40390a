"""Stripe's API for PaymentIntents and Refunds, and its webhooks, signed with the official
library's `WebhookSignature.generate_signature_header`."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import parse_qsl

import stripe

from tests.shop.payments.fakes.http import FakeRequest, FakeResponse, FakeServer

API_KEY = "sk_test_" + "a" * 24
WEBHOOK_SECRET = "whsec_" + "b" * 32


def _form(body: bytes) -> dict[str, str]:
    return dict(parse_qsl(body.decode(), keep_blank_values=True))


class FakeStripe:
    def __init__(self) -> None:
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, FakeResponse] = {}
        self.refund_status = "succeeded"
        self._lock = threading.Lock()
        self.server = FakeServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    def route(self, request: FakeRequest) -> FakeResponse:
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(401, "Invalid API Key provided")
        key = request.headers.get("idempotency-key")
        with self._lock:
            if key and key in self.idempotent:
                return self.idempotent[key]
            response = self._route(request)
            if key and request.method == "POST":
                self.idempotent[key] = response
        return response

    def _route(self, request: FakeRequest) -> FakeResponse:
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and parts == ["v1", "payment_intents"]:
            form = _form(request.body)
            intent_id = f"pi_{secrets.token_hex(12)}"
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "amount_received": 0,
                "currency": form["currency"],
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(8)}",
                "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
                "livemode": False,
                "created": int(time.time()),
            }
            self.intents[intent_id] = intent
            return _ok(intent)
        if request.method == "GET" and parts[:2] == ["v1", "payment_intents"] and len(parts) == 3:
            intent = self.intents.get(parts[2])
            return _ok(intent) if intent else _error(404, "No such payment_intent")
        if request.method == "POST" and parts == ["v1", "refunds"]:
            form = _form(request.body)
            intent = self.intents.get(form["payment_intent"])
            if intent is None or intent["status"] != "succeeded":
                return _error(400, "This PaymentIntent has no successful charge")
            amount = int(form.get("amount") or intent["amount"])
            refunded = sum(
                r["amount"] for r in self.refunds.values() if r["payment_intent"] == intent["id"]
            )
            if refunded + amount > intent["amount_received"]:
                return _error(400, "Refund amount is greater than unrefunded amount")
            refund = {
                "id": f"re_{secrets.token_hex(12)}",
                "object": "refund",
                "amount": amount,
                "currency": intent["currency"],
                "payment_intent": intent["id"],
                "status": self.refund_status,
            }
            self.refunds[refund["id"]] = refund
            return _ok(refund)
        return _error(404, f"Unrecognized request URL ({request.method}: {request.path})")

    # --- what the buyer and Stripe do -------------------------------------------------------

    def capture(self, intent_id: str) -> dict[str, Any]:
        intent = self.intents[intent_id]
        intent.update(status="succeeded", amount_received=intent["amount"])
        return intent

    def event(self, kind: str, obj: dict[str, Any]) -> bytes:
        event = {
            "id": f"evt_{secrets.token_hex(12)}",
            "object": "event",
            "api_version": "2025-01-27.acacia",
            "created": int(time.time()),
            "type": kind,
            "livemode": False,
            "data": {"object": obj},
        }
        return json.dumps(event).encode()

    @staticmethod
    def signed_headers(
        body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None
    ) -> dict[str, str]:
        header = stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=timestamp
        )
        return {"Stripe-Signature": header, "Content-Type": "application/json"}


def _ok(body: dict[str, Any]) -> FakeResponse:
    return FakeResponse(
        200,
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Request-Id": "req_fake"},
    )


def _error(status: int, message: str) -> FakeResponse:
    body = {"error": {"type": "invalid_request_error", "message": message}}
    return FakeResponse(status, json.dumps(body).encode(), {"Content-Type": "application/json"})
