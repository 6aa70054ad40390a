"""WeChat Pay API v3 (Native pay, query by out_trade_no, domestic refunds) and its signed,
AES-256-GCM encrypted notifications. Signing and verification use `wechatpayv3.utils`, the same
primitives the official-style SDK uses on the merchant side."""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from wechatpayv3.utils import load_private_key, load_public_key, rsa_sign

from tests.shop.payments.fakes.http import FakeRequest, FakeResponse, FakeServer
from tests.shop.payments.fakes.keys import KeyPair

MCHID = "1900000109"
APPID = "wxd678efh567hg6787"
APIV3_KEY = "0123456789abcdef0123456789abcdef"
MERCHANT_SERIAL = "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"
PLATFORM_KEY_ID = "PUB_KEY_ID_0114232134912410000000000000"
_AUTH = re.compile(r'(\w+)="([^"]*)"')


class FakeWechatPay:
    def __init__(self, *, platform_keys: KeyPair, merchant_keys: KeyPair) -> None:
        self._platform_private = load_private_key(platform_keys.private_pem)
        self._merchant_public = load_public_key(merchant_keys.public_pem)
        self.transactions: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.refund_status = "SUCCESS"
        self.server = FakeServer(self.route)

    @property
    def url(self) -> str:
        return self.server.url

    def _merchant_signed(self, request: FakeRequest) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("WECHATPAY2-SHA256-RSA2048 "):
            return False
        fields = dict(_AUTH.findall(header))
        if fields.get("mchid") != MCHID or fields.get("serial_no") != MERCHANT_SERIAL:
            return False
        path = request.path + (f"?{request.query}" if request.query else "")
        message = (
            f"{request.method}\n{path}\n{fields['timestamp']}\n{fields['nonce_str']}\n"
            f"{request.body.decode()}\n"
        )
        try:
            self._merchant_public.verify(
                base64.b64decode(fields["signature"]), message.encode(), PKCS1v15(), SHA256()
            )
        except (InvalidSignature, ValueError):
            return False
        return True

    def route(self, request: FakeRequest) -> FakeResponse:
        if not self._merchant_signed(request):
            return self._answer(401, {"code": "SIGN_ERROR", "message": "签名错误"})
        if request.method == "POST" and request.path == "/v3/pay/transactions/native":
            body = json.loads(request.body)
            if body.get("mchid") != MCHID or body.get("appid") != APPID:
                return self._answer(400, {"code": "PARAM_ERROR", "message": "mchid/appid"})
            self.transactions[body["out_trade_no"]] = {
                "out_trade_no": body["out_trade_no"],
                "transaction_id": "4200" + secrets.token_hex(12),
                "trade_state": "NOTPAY",
                "amount": {
                    "total": body["amount"]["total"],
                    "currency": body["amount"].get("currency", "CNY"),
                },
                "notify_url": body["notify_url"],
                "refunded": 0,
            }
            code_url = f"weixin://wxpay/bizpayurl?pr={secrets.token_urlsafe(8)}"
            return self._answer(200, {"code_url": code_url})
        prefix = "/v3/pay/transactions/out-trade-no/"
        if request.method == "GET" and request.path.startswith(prefix):
            query = dict(parse_qsl(request.query))
            trade = self.transactions.get(request.path[len(prefix) :])
            if trade is None or query.get("mchid") != MCHID:
                return self._answer(404, {"code": "ORDER_NOT_EXIST", "message": "订单不存在"})
            return self._answer(200, self._transaction(trade))
        if request.method == "POST" and request.path == "/v3/refund/domestic/refunds":
            body = json.loads(request.body)
            trade = self.transactions.get(body.get("out_trade_no", ""))
            amount = body["amount"]
            if trade is None or trade["trade_state"] != "SUCCESS":
                return self._answer(400, {"code": "INVALID_REQUEST", "message": "not paid"})
            if trade["refunded"] + amount["refund"] > trade["amount"]["total"]:
                return self._answer(400, {"code": "NOT_ENOUGH", "message": "exceeds"})
            trade["refunded"] += amount["refund"]
            refund = {
                "refund_id": "5030" + secrets.token_hex(10),
                "out_refund_no": body["out_refund_no"],
                "out_trade_no": trade["out_trade_no"],
                "status": self.refund_status,
                "amount": {
                    "refund": amount["refund"],
                    "total": amount["total"],
                    "currency": amount.get("currency", "CNY"),
                },
            }
            self.refunds[body["out_refund_no"]] = refund
            return self._answer(200, refund)
        return self._answer(404, {"code": "NOT_FOUND", "message": request.path})

    def _transaction(self, trade: dict[str, Any]) -> dict[str, Any]:
        return {
            "appid": APPID,
            "mchid": MCHID,
            "out_trade_no": trade["out_trade_no"],
            "transaction_id": trade["transaction_id"],
            "trade_type": "NATIVE",
            "trade_state": trade["trade_state"],
            "trade_state_desc": trade["trade_state"],
            "amount": {
                "total": trade["amount"]["total"],
                "payer_total": trade["amount"]["total"],
                "currency": trade["amount"]["currency"],
                "payer_currency": "CNY",
            },
            "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        }

    def signature_headers(self, body: str, *, timestamp: int | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        nonce = secrets.token_hex(16)
        return {
            "Wechatpay-Timestamp": ts,
            "Wechatpay-Nonce": nonce,
            "Wechatpay-Serial": PLATFORM_KEY_ID,
            "Wechatpay-Signature": rsa_sign(self._platform_private, f"{ts}\n{nonce}\n{body}\n"),
            "Wechatpay-Signature-Type": "WECHATPAY2-SHA256-RSA2048",
        }

    def _answer(self, status: int, body: dict[str, Any]) -> FakeResponse:
        text = json.dumps(body, ensure_ascii=False)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            **self.signature_headers(text),
        }
        return FakeResponse(status, text.encode(), headers)

    def pay(self, out_trade_no: str) -> dict[str, Any]:
        trade = self.transactions[out_trade_no]
        trade["trade_state"] = "SUCCESS"
        return trade

    def notification(
        self,
        resource: dict[str, Any],
        *,
        event_type: str = "TRANSACTION.SUCCESS",
        key: str = APIV3_KEY,
        timestamp: int | None = None,
    ) -> tuple[dict[str, str], bytes]:
        """A v3 notification: resource encrypted with AEAD_AES_256_GCM, body signed."""
        nonce = secrets.token_hex(6)
        associated = "transaction" if event_type.startswith("TRANSACTION") else "refund"
        sealed = AESGCM(key.encode()).encrypt(
            nonce.encode(), json.dumps(resource).encode(), associated.encode()
        )
        body = json.dumps(
            {
                "id": secrets.token_hex(18),
                "create_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
                "resource_type": "encrypt-resource",
                "event_type": event_type,
                "summary": "支付成功",
                "resource": {
                    "original_type": associated,
                    "algorithm": "AEAD_AES_256_GCM",
                    "ciphertext": base64.b64encode(sealed).decode(),
                    "associated_data": associated,
                    "nonce": nonce,
                },
            }
        )
        headers = {
            "Content-Type": "application/json",
            **self.signature_headers(body, timestamp=timestamp),
        }
        return headers, body.encode()

    def paid_resource(self, out_trade_no: str, **overrides: Any) -> dict[str, Any]:
        resource = {
            **self._transaction(self.transactions[out_trade_no]),
            "success_time": time.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        }
        resource.update(overrides)
        return resource
