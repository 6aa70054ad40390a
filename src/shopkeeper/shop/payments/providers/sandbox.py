"""The built-in sandbox: a provider with no outside server. It signs callbacks with
`SHOPKEEPER_SANDBOX_WEBHOOK_SECRET` (scheme in API.md) and delivers them to our own webhook,
retrying until acknowledged, exactly as a real provider would."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import httpx
import structlog
from starlette.responses import JSONResponse, Response

from shopkeeper.core.errors import problem_response
from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.providers.base import (
    TIMESTAMP_TOLERANCE_SECONDS,
    CallbackEvent,
    CallbackOutcome,
    CallbackRejected,
    Charge,
    CreatedPayment,
    RefundResult,
    RemoteStatus,
    header,
    secret_text,
)

SIGNATURE_HEADER = "Shopkeeper-Signature"
WEBHOOK_PATH = "/api/v1/payments/webhooks/sandbox"
_OUTCOMES: dict[str, CallbackOutcome] = {
    "payment.succeeded": "succeeded",
    "payment.failed": "failed",
    "refund.succeeded": "refunded",
}

log = structlog.get_logger(__name__)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class SandboxProvider:
    name = "sandbox"

    def __init__(self, settings: Settings) -> None:
        self._secret = secret_text(settings.sandbox_webhook_secret, "sandbox_webhook_secret")
        self._webhook_url = settings.base_url + WEBHOOK_PATH

    async def create_payment(self, charge: Charge) -> CreatedPayment:
        return CreatedPayment(
            provider_reference=charge.reference, action_type="none", action_value=None
        )

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> CallbackEvent:
        timestamp, signatures = _parse_signature_header(header(headers, SIGNATURE_HEADER))
        expected = sign(self._secret, timestamp, body).split("v1=", 1)[1]
        if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
            raise CallbackRejected("invalid-signature", "The signature does not match")
        if abs(now.timestamp() - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
            raise CallbackRejected("stale-timestamp", "The signature timestamp is too old")
        try:
            event = json.loads(body)
            data = event["data"]
            event_id = str(event["id"])
            kind = str(event["type"])
            reference = str(data["reference"])
            amount = data["amount"]
            currency = str(data["currency"]).upper()
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected("malformed-body", "Not a sandbox event") from exc
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise CallbackRejected("malformed-body", "amount must be an integer")
        outcome = _OUTCOMES.get(kind, "ignored")
        summary = {"id": event_id, "type": kind, "data": data}
        return CallbackEvent(
            event_key=event_id,
            outcome=outcome,
            reference=reference,
            amount=amount,
            currency=currency,
            refund_reference=str(data.get("refund_reference") or "") or None,
            summary=summary,
        )

    def respond(self, rejection: CallbackRejected | None) -> Response:
        if rejection is None:
            return JSONResponse({"received": True})
        slug = (
            "invalid-signature"
            if "signature" in rejection.reason or "timestamp" in rejection.reason
            else "invalid-payload"
        )
        return problem_response(400, slug, "Callback rejected", rejection.detail)

    async def refund(
        self, *, reference: str, refund_id: uuid.UUID, amount: int, total: int, currency: str
    ) -> RefundResult:
        return RefundResult(reference=f"sbx_re_{refund_id.hex}", succeeded=True)

    async def query(self, *, reference: str, currency: str) -> RemoteStatus | None:
        # The sandbox's outcome is whatever the operator asks it to send; there is nothing to ask.
        return None

    def build_event(
        self, *, outcome: Literal["succeed", "fail"], reference: str, amount: int, currency: str
    ) -> bytes:
        event: dict[str, Any] = {
            "id": f"evt_{secrets.token_hex(12)}",
            "type": "payment.succeeded" if outcome == "succeed" else "payment.failed",
            "created": int(time.time()),
            "data": {"reference": reference, "amount": amount, "currency": currency},
        }
        return json.dumps(event, separators=(",", ":")).encode()

    async def deliver(
        self, body: bytes, *, copies: int = 1, max_attempts: int = 8, first_delay: float = 0.2
    ) -> int:
        """Post `copies` identical deliveries of one event concurrently; each retries with backoff
        until our webhook answers 2xx. Returns how many were acknowledged."""
        async with httpx.AsyncClient(timeout=10) as http:
            results = await asyncio.gather(
                *(self._deliver_one(http, body, max_attempts, first_delay) for _ in range(copies))
            )
        return sum(results)

    async def _deliver_one(
        self, http: httpx.AsyncClient, body: bytes, max_attempts: int, delay: float
    ) -> bool:
        for attempt in range(1, max_attempts + 1):
            # Re-signed per attempt, as providers do, so a retry is never stale.
            signature = sign(self._secret, int(time.time()), body)
            try:
                response = await http.post(
                    self._webhook_url,
                    content=body,
                    headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
                )
                if response.is_success:
                    return True
                log.warning(
                    "sandbox_delivery_refused", status=response.status_code, attempt=attempt
                )
            except httpx.HTTPError as exc:
                log.warning("sandbox_delivery_failed", error=type(exc).__name__, attempt=attempt)
            await asyncio.sleep(min(delay * 2 ** (attempt - 1), 10.0))
        return False


def _parse_signature_header(value: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t" and item.isdigit():
            timestamp = int(item)
        elif key == "v1" and item:
            signatures.append(item)
    if timestamp is None or not signatures:
        raise CallbackRejected("invalid-signature", f"Missing or malformed {SIGNATURE_HEADER}")
    return timestamp, signatures
