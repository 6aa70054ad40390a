"""Alipay: page pay (a signed redirect URL) and asynchronous notifications, RSA2, through
python-alipay-sdk. The SDK talks to the gateway synchronously, so calls run in a thread."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from alipay import AliPay
from alipay.exceptions import AliPayException, AliPayValidationError
from starlette.responses import PlainTextResponse, Response

from shopkeeper.core.money import Money, parse_decimal_amount
from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.providers.base import (
    CallbackEvent,
    CallbackOutcome,
    CallbackRejected,
    Charge,
    CreatedPayment,
    ProviderError,
    ProviderNotConfigured,
    RefundResult,
    RemoteStatus,
    pem,
    secret_text,
)

_PAID = {"TRADE_SUCCESS", "TRADE_FINISHED"}
_REQUIRED = ("notify_id", "app_id", "out_trade_no", "trade_status", "total_amount")
# Only these notification fields are kept for audit; buyer identifiers stay out.
_AUDITED_FIELDS = ("notify_id", "notify_time", "notify_type", "app_id", "out_trade_no",
                   "trade_no", "trade_status", "total_amount", "refund_fee", "out_biz_no",
                   "gmt_payment", "gmt_refund")  # fmt: skip


class AlipayProvider:
    name = "alipay"

    def __init__(self, settings: Settings) -> None:
        if not settings.alipay_app_id:
            raise ProviderNotConfigured("SHOPKEEPER_ALIPAY_APP_ID is not set")
        self._app_id = settings.alipay_app_id
        self._gateway = settings.alipay_gateway
        self._client = AliPay(
            appid=self._app_id,
            app_private_key_string=pem(
                secret_text(settings.alipay_private_key, "alipay_private_key"), "PRIVATE KEY"
            ),
            alipay_public_key_string=pem(
                secret_text(settings.alipay_public_key, "alipay_public_key"), "PUBLIC KEY"
            ),
            sign_type="RSA2",
        )
        self._client._gateway = self._gateway

    async def create_payment(self, charge: Charge) -> CreatedPayment:
        order_string = self._client.client_api(
            "alipay.trade.page.pay",
            biz_content={
                "out_trade_no": charge.reference,
                "total_amount": _yuan(charge.amount, charge.currency),
                "subject": charge.description,
                "product_code": "FAST_INSTANT_TRADE_PAY",
            },
            return_url=charge.return_url,
            notify_url=charge.notify_url,
        )
        return CreatedPayment(
            provider_reference=charge.reference,
            action_type="redirect",
            action_value=f"{self._gateway}?{order_string}",
        )

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> CallbackEvent:
        try:
            fields = dict(
                parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            )
        except (UnicodeDecodeError, ValueError) as exc:
            raise CallbackRejected("malformed-body", "Not a form-encoded notification") from exc
        signature = fields.pop("sign", "")
        if not signature:
            raise CallbackRejected("invalid-signature", "The notification is not signed")
        signed = dict(fields)
        try:
            valid = self._client.verify(signed, signature)
        except (AliPayException, ValueError, TypeError, IndexError) as exc:
            raise CallbackRejected("invalid-signature", "The signature cannot be checked") from exc
        if not valid:
            raise CallbackRejected("invalid-signature", "The signature does not match")
        if fields.get("app_id") != self._app_id:
            raise CallbackRejected("wrong-app-id", "The notification is for another app")
        missing = [name for name in _REQUIRED if not fields.get(name)]
        if missing:
            raise CallbackRejected("malformed-body", f"Missing {', '.join(missing)}")
        status = fields["trade_status"]
        outcome: CallbackOutcome = (
            "succeeded" if status in _PAID else "failed" if status == "TRADE_CLOSED" else "ignored"
        )
        summary: dict[str, Any] = {key: fields[key] for key in _AUDITED_FIELDS if key in fields}
        return CallbackEvent(
            event_key=fields["notify_id"],
            outcome=outcome,
            reference=fields["out_trade_no"],
            decimal_amount=fields["total_amount"],
            summary=summary,
        )

    def respond(self, rejection: CallbackRejected | None) -> Response:
        # Alipay keeps retrying until it reads exactly `success`.
        return PlainTextResponse("success" if rejection is None else "failure")

    async def refund(
        self, *, reference: str, refund_id: uuid.UUID, amount: int, total: int, currency: str
    ) -> RefundResult:
        try:
            result = await asyncio.to_thread(
                self._client.api_alipay_trade_refund,
                _yuan(amount, currency),
                out_trade_no=reference,
                out_request_no=refund_id.hex,
            )
        except (AliPayException, AliPayValidationError, OSError, ValueError) as exc:
            raise ProviderError(f"alipay: {type(exc).__name__}") from exc
        if str(result.get("code")) != "10000":
            raise ProviderError(
                f"alipay refund refused: {result.get('sub_code') or result.get('code')}"
            )
        return RefundResult(reference=refund_id.hex, succeeded=True)

    async def query(self, *, reference: str, currency: str) -> RemoteStatus | None:
        try:
            result = await asyncio.to_thread(
                self._client.api_alipay_trade_query, out_trade_no=reference
            )
        except (AliPayException, AliPayValidationError, OSError, ValueError) as exc:
            raise ProviderError(f"alipay: {type(exc).__name__}") from exc
        code = str(result.get("code"))
        if code == "40004" and result.get("sub_code") == "ACQ.TRADE_NOT_EXIST":
            # Alipay opens the trade only when the buyer reaches the payment page.
            return RemoteStatus("pending", None, None)
        if code != "10000":
            raise ProviderError(f"alipay: query answered {code} {result.get('sub_code', '')}")
        status = str(result.get("trade_status", ""))
        total = result.get("total_amount")
        amount = parse_decimal_amount(str(total), currency) if total else None
        if status in _PAID:
            return RemoteStatus("succeeded", amount, currency)
        if status == "TRADE_CLOSED":
            return RemoteStatus("failed", amount, currency)
        return RemoteStatus("pending", amount, currency)


def _yuan(amount: int, currency: str) -> str:
    return Money(amount=amount, currency=currency).to_decimal_string()
