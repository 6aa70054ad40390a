"""WeChat Pay API v3: Native pay (a `code_url` to show as a QR code) and v3 notifications.

API calls go through `wechatpayv3` (which signs requests and checks response signatures with the
platform public key); it is synchronous, so calls run in a thread. Notifications are checked
here, with the same primitives, because the library checks neither freshness nor whose account a
notification is for.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.responses import JSONResponse, Response
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.utils import aes_decrypt, load_public_key, rsa_verify

from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.providers.base import (
    TIMESTAMP_TOLERANCE_SECONDS,
    CallbackEvent,
    CallbackOutcome,
    CallbackRejected,
    Charge,
    CreatedPayment,
    ProviderError,
    ProviderNotConfigured,
    RefundResult,
    RemoteOutcome,
    RemoteStatus,
    header,
    pem,
    secret_text,
)

_FAILED_STATES = {"CLOSED", "PAYERROR", "REVOKED"}


class WechatPayProvider:
    name = "wechatpay"

    def __init__(self, settings: Settings) -> None:
        for setting in ("mchid", "appid", "cert_serial_no", "platform_public_key_id"):
            if not getattr(settings, f"wechatpay_{setting}"):
                raise ProviderNotConfigured(f"SHOPKEEPER_WECHATPAY_{setting.upper()} is not set")
        assert settings.wechatpay_mchid and settings.wechatpay_appid
        assert settings.wechatpay_platform_public_key_id
        self._mchid = settings.wechatpay_mchid
        self._appid = settings.wechatpay_appid
        self._apiv3_key = secret_text(settings.wechatpay_apiv3_key, "wechatpay_apiv3_key")
        if len(self._apiv3_key.encode()) != 32:
            raise ProviderNotConfigured("SHOPKEEPER_WECHATPAY_APIV3_KEY must be 32 bytes")
        platform_key = pem(
            secret_text(settings.wechatpay_platform_public_key, "wechatpay_platform_public_key"),
            "PUBLIC KEY",
        )
        self._platform_key_id = settings.wechatpay_platform_public_key_id
        self._platform_key = load_public_key(platform_key)
        self._client = WeChatPay(
            wechatpay_type=WeChatPayType.NATIVE,
            mchid=self._mchid,
            private_key=pem(
                secret_text(settings.wechatpay_private_key, "wechatpay_private_key"), "PRIVATE KEY"
            ),
            cert_serial_no=settings.wechatpay_cert_serial_no,
            appid=self._appid,
            apiv3_key=self._apiv3_key,
            public_key=platform_key,
            public_key_id=self._platform_key_id,
            timeout=(5, 15),
        )
        self._client._core._gate_way = settings.wechatpay_api_base.rstrip("/")

    async def create_payment(self, charge: Charge) -> CreatedPayment:
        code, text = await self._call(
            self._client.pay,
            description=charge.description[:127],
            out_trade_no=charge.reference,
            amount={"total": charge.amount, "currency": charge.currency},
            notify_url=charge.notify_url,
        )
        if code != 200:
            raise ProviderError(f"wechatpay: native pay answered {code}")
        code_url = _json(text).get("code_url")
        if not code_url:
            raise ProviderError("wechatpay: no code_url in the answer")
        return CreatedPayment(
            provider_reference=charge.reference, action_type="qr_code", action_value=str(code_url)
        )

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> CallbackEvent:
        timestamp = header(headers, "Wechatpay-Timestamp")
        nonce = header(headers, "Wechatpay-Nonce")
        signature = header(headers, "Wechatpay-Signature")
        serial = header(headers, "Wechatpay-Serial")
        if not (timestamp and nonce and signature):
            raise CallbackRejected("invalid-signature", "Wechatpay-* signature headers missing")
        if serial != self._platform_key_id:
            raise CallbackRejected("unknown-key", "Signed with a key we do not know")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CallbackRejected("malformed-body", "Body is not UTF-8") from exc
        if not rsa_verify(timestamp, nonce, text, signature, self._platform_key):
            raise CallbackRejected("invalid-signature", "The signature does not match")
        if (
            not timestamp.isdigit()
            or abs(now.timestamp() - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS
        ):
            raise CallbackRejected("stale-timestamp", "Wechatpay-Timestamp is too old")
        try:
            notification = json.loads(text)
            event_id = str(notification["id"])
            event_type = str(notification["event_type"])
            resource = notification["resource"]
            plain = aes_decrypt(
                nonce=resource["nonce"],
                ciphertext=resource["ciphertext"],
                associated_data=resource.get("associated_data") or "",
                apiv3_key=self._apiv3_key,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise CallbackRejected("malformed-body", "Not a WeChat Pay notification") from exc
        if plain is None:
            raise CallbackRejected("undecryptable", "The resource does not decrypt with our key")
        try:
            data: dict[str, Any] = json.loads(plain)
        except ValueError as exc:
            raise CallbackRejected("malformed-body", "The resource is not JSON") from exc
        if str(data.get("mchid")) != self._mchid:
            raise CallbackRejected("wrong-merchant", "The notification is for another merchant")
        if event_type.startswith("TRANSACTION.") and str(data.get("appid")) != self._appid:
            raise CallbackRejected("wrong-app-id", "The notification is for another app")
        return _event(event_id, event_type, data)

    def respond(self, rejection: CallbackRejected | None) -> Response:
        if rejection is None:
            return Response(status_code=204)
        # WeChat Pay retries on any non-2xx answer carrying this body shape.
        return JSONResponse({"code": "FAIL", "message": rejection.reason}, status_code=400)

    async def refund(
        self, *, reference: str, refund_id: uuid.UUID, amount: int, total: int, currency: str
    ) -> RefundResult:
        code, text = await self._call(
            self._client.refund,
            out_refund_no=refund_id.hex,
            out_trade_no=reference,
            amount={"refund": amount, "total": total, "currency": currency},
        )
        answer = _json(text)
        if code != 200 or answer.get("status") not in {"SUCCESS", "PROCESSING"}:
            raise ProviderError(f"wechatpay: refund answered {code} {answer.get('code', '')}")
        return RefundResult(reference=refund_id.hex, succeeded=answer["status"] == "SUCCESS")

    async def query(self, *, reference: str, currency: str) -> RemoteStatus | None:
        code, text = await self._call(self._client.query, out_trade_no=reference)
        answer = _json(text)
        if code == 404:
            return RemoteStatus("pending", None, None)
        if code != 200:
            raise ProviderError(f"wechatpay: query answered {code}")
        amount = answer.get("amount") or {}
        total = amount.get("total")
        remote_currency = amount.get("currency")
        state = answer.get("trade_state")
        outcome: RemoteOutcome = (
            "succeeded"
            if state == "SUCCESS"
            else "failed"
            if state in _FAILED_STATES
            else "pending"
        )
        return RemoteStatus(outcome, total, remote_currency)

    async def _call(self, method: Any, **kwargs: Any) -> tuple[int, Any]:
        try:
            code, text = await asyncio.to_thread(method, **kwargs)
        except Exception as exc:  # the library raises bare Exception for signature failures
            raise ProviderError(f"wechatpay: {type(exc).__name__}") from exc
        return int(code), text


def _json(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _event(event_id: str, event_type: str, data: dict[str, Any]) -> CallbackEvent:
    amount: dict[str, Any] = data.get("amount") or {}
    summary = {
        "id": event_id,
        "event_type": event_type,
        "out_trade_no": data.get("out_trade_no"),
        "transaction_id": data.get("transaction_id"),
        "trade_state": data.get("trade_state"),
        "refund_status": data.get("refund_status"),
        "out_refund_no": data.get("out_refund_no"),
        "amount": amount,
    }
    outcome: CallbackOutcome = "ignored"
    value: Any = None
    if event_type == "TRANSACTION.SUCCESS" and data.get("trade_state") == "SUCCESS":
        outcome, value = "succeeded", amount.get("total")
    elif event_type.startswith("TRANSACTION.") and data.get("trade_state") in _FAILED_STATES:
        outcome, value = "failed", amount.get("total")
    elif event_type == "REFUND.SUCCESS":
        outcome, value = "refunded", amount.get("refund")
    reference = data.get("out_trade_no")
    if outcome != "ignored" and (not reference or not isinstance(value, int)):
        raise CallbackRejected("malformed-body", "The resource lacks out_trade_no or amount")
    currency = amount.get("currency") if outcome != "refunded" else None
    return CallbackEvent(
        event_key=event_id,
        outcome=outcome,
        reference=str(reference) if reference else None,
        amount=value if isinstance(value, int) else None,
        currency=str(currency).upper() if currency else None,
        refund_reference=str(data["out_refund_no"]) if data.get("out_refund_no") else None,
        summary=summary,
    )
