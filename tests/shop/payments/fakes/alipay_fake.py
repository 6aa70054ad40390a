"""Alipay's open-API gateway (page pay, trade query, refund) and its asynchronous notifications.

The fake is itself a python-alipay-sdk client seen from Alipay's side: it signs with "Alipay's"
private key and checks the merchant's requests with the merchant's public key, so signatures are
made and checked by the official SDK's own code.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from alipay import AliPay

from tests.shop.payments.fakes.http import FakeRequest, FakeResponse, FakeServer
from tests.shop.payments.fakes.keys import KeyPair

APP_ID = "2021000000000001"
SELLER_ID = "2088000000000001"
_BEIJING = timezone(timedelta(hours=8))


class FakeAlipay:
    def __init__(self, *, alipay_keys: KeyPair, merchant_keys: KeyPair) -> None:
        self.sdk = AliPay(
            appid=APP_ID,
            app_private_key_string=alipay_keys.private_pem,
            alipay_public_key_string=merchant_keys.public_pem,
            sign_type="RSA2",
        )
        self.trades: dict[str, dict[str, Any]] = {}
        self.server = FakeServer(self.route)

    @property
    def gateway(self) -> str:
        return self.server.url + "/gateway.do"

    def verify_merchant(self, fields: dict[str, str]) -> bool:
        """Requests are signed over every parameter but `sign` (`sign_type` included, unlike
        notifications)."""
        fields = dict(fields)
        signature = fields.pop("sign", "")
        message = "&".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return bool(signature) and bool(self.sdk._verify(message, signature))

    def open_page(self, redirect_url: str) -> dict[str, Any]:
        """The buyer's browser lands on the page-pay URL: Alipay checks it and opens a trade."""
        parts = urlsplit(redirect_url)
        assert parts.path == "/gateway.do"
        fields = dict(parse_qsl(parts.query, keep_blank_values=True))
        assert self.verify_merchant(fields), "page pay URL not signed by the merchant"
        assert fields["method"] == "alipay.trade.page.pay" and fields["app_id"] == APP_ID
        biz = json.loads(fields["biz_content"])
        trade = {
            "out_trade_no": biz["out_trade_no"],
            "trade_no": "2026" + secrets.token_hex(10),
            "total_amount": biz["total_amount"],
            "status": "WAIT_BUYER_PAY",
            "refunded": Decimal("0"),
            "notify_url": fields.get("notify_url"),
        }
        self.trades[biz["out_trade_no"]] = trade
        return trade

    def pay(self, out_trade_no: str) -> dict[str, Any]:
        trade = self.trades[out_trade_no]
        trade["status"] = "TRADE_SUCCESS"
        return trade

    def route(self, request: FakeRequest) -> FakeResponse:
        if request.path != "/gateway.do":
            return FakeResponse(404)
        fields = dict(parse_qsl(request.query or request.body.decode(), keep_blank_values=True))
        method = fields.get("method", "")
        response_type = method.replace(".", "_") + "_response"
        if fields.get("app_id") != APP_ID or not self.verify_merchant(fields):
            return self._answer(
                response_type,
                {"code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature"},
            )
        biz = json.loads(fields.get("biz_content") or "{}")
        trade = self.trades.get(biz.get("out_trade_no", ""))
        if trade is None:
            return self._answer(
                response_type,
                {"code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST"},
            )
        if method == "alipay.trade.query":
            return self._answer(
                response_type,
                {
                    "code": "10000",
                    "msg": "Success",
                    "trade_no": trade["trade_no"],
                    "out_trade_no": trade["out_trade_no"],
                    "trade_status": trade["status"],
                    "total_amount": trade["total_amount"],
                },
            )
        if method == "alipay.trade.refund":
            amount = Decimal(biz["refund_amount"])
            if trade["status"] != "TRADE_SUCCESS" or trade["refunded"] + amount > Decimal(
                trade["total_amount"]
            ):
                return self._answer(
                    response_type,
                    {
                        "code": "40004",
                        "msg": "Business Failed",
                        "sub_code": "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
                    },
                )
            trade["refunded"] += amount
            return self._answer(
                response_type,
                {
                    "code": "10000",
                    "msg": "Success",
                    "fund_change": "Y",
                    "refund_fee": str(trade["refunded"]),
                    "out_trade_no": trade["out_trade_no"],
                    "trade_no": trade["trade_no"],
                },
            )
        return self._answer(response_type, {"code": "40004", "msg": "Unknown method"})

    def _answer(self, response_type: str, content: dict[str, Any]) -> FakeResponse:
        inner = json.dumps(content, separators=(",", ":"), ensure_ascii=False)
        sign = self.sdk._sign(inner)
        body = f'{{"{response_type}":{inner},"sign":"{sign}"}}'
        return FakeResponse(200, body.encode(), {"Content-Type": "text/html;charset=utf-8"})

    def notification(self, out_trade_no: str, **overrides: str) -> dict[str, str]:
        """The fields of the trade_status_sync notification Alipay posts after payment."""
        trade = self.trades[out_trade_no]
        now = datetime.now(_BEIJING).strftime("%Y-%m-%d %H:%M:%S")
        fields = {
            "notify_time": now,
            "notify_type": "trade_status_sync",
            "notify_id": secrets.token_hex(16),
            "app_id": APP_ID,
            "charset": "utf-8",
            "version": "1.0",
            "trade_no": trade["trade_no"],
            "out_trade_no": out_trade_no,
            "trade_status": trade["status"],
            "total_amount": trade["total_amount"],
            "receipt_amount": trade["total_amount"],
            "buyer_id": "2088102177846880",
            "seller_id": SELLER_ID,
            "gmt_payment": now,
        }
        fields.update(overrides)
        return fields

    def sign_notification(self, fields: dict[str, str]) -> bytes:
        """Sign as Alipay does: every field but `sign` and `sign_type`, sorted, `k=v` joined."""
        unsigned = {k: v for k, v in fields.items() if k not in {"sign", "sign_type"}}
        message = "&".join(f"{k}={v}" for k, v in sorted(unsigned.items()))
        signed = {**unsigned, "sign_type": "RSA2", "sign": self.sdk._sign(message)}
        return urlencode(signed).encode()
