"""Payment providers behind one interface (`base.PaymentProvider`)."""

from __future__ import annotations

from typing import Literal

from shopkeeper.core.settings import Settings
from shopkeeper.shop.payments.providers.base import PaymentProvider, ProviderNotConfigured

ProviderName = Literal["sandbox", "stripe", "alipay", "wechatpay"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("sandbox", "stripe", "alipay", "wechatpay")


def build_provider(name: str, settings: Settings) -> PaymentProvider:
    """The provider `name` configured from settings; `ProviderNotConfigured` when it is not."""
    if name == "sandbox":
        if not settings.sandbox_enabled:
            raise ProviderNotConfigured("the sandbox provider is disabled")
        from shopkeeper.shop.payments.providers.sandbox import SandboxProvider

        return SandboxProvider(settings)
    if name == "stripe":
        from shopkeeper.shop.payments.providers.stripe import StripeProvider

        return StripeProvider(settings)
    if name == "alipay":
        from shopkeeper.shop.payments.providers.alipay import AlipayProvider

        return AlipayProvider(settings)
    if name == "wechatpay":
        from shopkeeper.shop.payments.providers.wechatpay import WechatPayProvider

        return WechatPayProvider(settings)
    raise ProviderNotConfigured(f"unknown provider {name!r}")
