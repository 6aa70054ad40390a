"""Payments fixtures: the fake providers, settings pointing at them, and an order to pay."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.conftest import make_settings
from tests.shop.orders.conftest import checkout as place
from tests.shop.orders.conftest import create_cart, create_sku
from tests.shop.payments.fakes import alipay_fake, stripe_fake, wechatpay_fake
from tests.shop.payments.fakes.alipay_fake import FakeAlipay
from tests.shop.payments.fakes.keys import KeyPair, key_pair
from tests.shop.payments.fakes.stripe_fake import FakeStripe
from tests.shop.payments.fakes.wechatpay_fake import FakeWechatPay

SANDBOX_SECRET = "sandbox-test-secret"


@pytest.fixture(scope="session")
def alipay_keys() -> KeyPair:
    return key_pair("alipay")


@pytest.fixture(scope="session")
def alipay_merchant_keys() -> KeyPair:
    return key_pair("alipay-merchant")


@pytest.fixture(scope="session")
def wechat_platform_keys() -> KeyPair:
    return key_pair("wechat-platform")


@pytest.fixture(scope="session")
def wechat_merchant_keys() -> KeyPair:
    return key_pair("wechat-merchant")


@pytest.fixture(scope="session")
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe()
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="session")
def fake_alipay(alipay_keys: KeyPair, alipay_merchant_keys: KeyPair) -> Iterator[FakeAlipay]:
    fake = FakeAlipay(alipay_keys=alipay_keys, merchant_keys=alipay_merchant_keys)
    fake.server.start()
    yield fake
    fake.server.stop()


@pytest.fixture(scope="session")
def fake_wechatpay(
    wechat_platform_keys: KeyPair, wechat_merchant_keys: KeyPair
) -> Iterator[FakeWechatPay]:
    fake = FakeWechatPay(platform_keys=wechat_platform_keys, merchant_keys=wechat_merchant_keys)
    fake.server.start()
    yield fake
    fake.server.stop()


def provider_overrides(
    tmp_path: Path,
    *,
    stripe: FakeStripe,
    alipay: FakeAlipay,
    wechatpay: FakeWechatPay,
    alipay_keys: KeyPair,
    alipay_merchant_keys: KeyPair,
    wechat_platform_keys: KeyPair,
    wechat_merchant_keys: KeyPair,
) -> dict[str, Any]:
    """Settings for all four providers. Keys go in three ways operators give them: PEM text,
    a file path, bare base64."""
    merchant_key_file = tmp_path / "alipay-merchant.pem"
    merchant_key_file.write_text(alipay_merchant_keys.private_pem)
    bare_platform_key = "".join(wechat_platform_keys.public_pem.strip().splitlines()[1:-1])
    return {
        "sandbox_enabled": True,
        "sandbox_webhook_secret": SANDBOX_SECRET,
        "stripe_api_key": stripe_fake.API_KEY,
        "stripe_webhook_secret": stripe_fake.WEBHOOK_SECRET,
        "stripe_api_base": stripe.url,
        "alipay_app_id": alipay_fake.APP_ID,
        "alipay_private_key": str(merchant_key_file),
        "alipay_public_key": alipay_keys.public_pem,
        "alipay_gateway": alipay.gateway,
        "wechatpay_mchid": wechatpay_fake.MCHID,
        "wechatpay_appid": wechatpay_fake.APPID,
        "wechatpay_apiv3_key": wechatpay_fake.APIV3_KEY,
        "wechatpay_private_key": wechat_merchant_keys.private_pem,
        "wechatpay_cert_serial_no": wechatpay_fake.MERCHANT_SERIAL,
        "wechatpay_platform_public_key": bare_platform_key,
        "wechatpay_platform_public_key_id": wechatpay_fake.PLATFORM_KEY_ID,
        "wechatpay_api_base": wechatpay.url,
    }


@pytest.fixture
def provider_settings_overrides(
    tmp_path: Path,
    fake_stripe: FakeStripe,
    fake_alipay: FakeAlipay,
    fake_wechatpay: FakeWechatPay,
    alipay_keys: KeyPair,
    alipay_merchant_keys: KeyPair,
    wechat_platform_keys: KeyPair,
    wechat_merchant_keys: KeyPair,
) -> dict[str, Any]:
    return provider_overrides(
        tmp_path,
        stripe=fake_stripe,
        alipay=fake_alipay,
        wechatpay=fake_wechatpay,
        alipay_keys=alipay_keys,
        alipay_merchant_keys=alipay_merchant_keys,
        wechat_platform_keys=wechat_platform_keys,
        wechat_merchant_keys=wechat_merchant_keys,
    )


@pytest.fixture
def offline_settings(tmp_path: Path, provider_settings_overrides: dict[str, Any]) -> Settings:
    """Provider settings without a database, for tests of the provider layer alone."""
    return make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path, **provider_settings_overrides
    )


@pytest.fixture
def settings(
    settings_factory: Callable[..., Settings], provider_settings_overrides: dict[str, Any]
) -> Settings:
    return settings_factory(**provider_settings_overrides)


OrderFactory = Callable[..., Any]


@pytest.fixture
def new_order(client: httpx.AsyncClient, staff_headers: dict[str, str]) -> OrderFactory:
    """`await new_order(customer_headers, price=...)` -> a `pending_payment` order (dict)."""

    async def make(headers: dict[str, str], *, price: int = 1_250, quantity: int = 2) -> Any:
        sku = await create_sku(client, staff_headers, price=price)
        cart_id = await create_cart(client, headers, [(sku, quantity)])
        response = await place(client, headers, cart_id)
        assert response.status_code == 201, response.text
        return response.json()

    return make


async def start_payment(
    client: httpx.AsyncClient, headers: dict[str, str], order_id: str, provider: str
) -> dict[str, Any]:
    import uuid

    response = await client.post(
        f"/api/v1/orders/{order_id}/payments",
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"provider": provider},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def order_status(client: httpx.AsyncClient, headers: dict[str, str], order_id: str) -> str:
    response = await client.get(f"/api/v1/orders/{order_id}", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def payment_of(
    client: httpx.AsyncClient, headers: dict[str, str], payment_id: str
) -> dict[str, Any]:
    response = await client.get(f"/api/v1/payments/{payment_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def drained(runtime: Runtime) -> AsyncIterator[Callable[[], Any]]:
    from tests.support.events import drain_events

    async def drain() -> int:
        return await drain_events(runtime)

    yield drain
