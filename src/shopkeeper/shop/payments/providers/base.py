"""The provider interface: create a payment, verify and parse a callback, refund, query status.

Each provider module turns its own protocol into these plain values, so the state machine in
`payments.callbacks` never sees a provider's format.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import SecretStr
from starlette.responses import Response

ActionType = Literal["redirect", "client_secret", "qr_code", "none"]
CallbackOutcome = Literal["succeeded", "failed", "refunded", "ignored"]
RemoteOutcome = Literal["succeeded", "failed", "pending"]

# Providers re-send a callback for hours, but a signature older than this is a replay.
TIMESTAMP_TOLERANCE_SECONDS = 300


class ProviderError(Exception):
    """The provider refused a request or could not be reached."""


class CallbackRejected(Exception):
    """A callback failed verification or could not be understood; `reason` is a short slug."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


@dataclass(frozen=True, slots=True)
class Charge:
    payment_id: uuid.UUID
    reference: str
    amount: int
    currency: str
    description: str
    notify_url: str
    return_url: str


@dataclass(frozen=True, slots=True)
class CreatedPayment:
    provider_reference: str
    action_type: ActionType
    action_value: str | None


@dataclass(frozen=True, slots=True)
class CallbackEvent:
    """A verified callback. `event_key` identifies the provider's event (its retries share it)."""

    event_key: str
    outcome: CallbackOutcome
    reference: str | None
    amount: int | None = None
    currency: str | None = None
    refund_reference: str | None = None
    decimal_amount: str | None = None
    """Set instead of `amount` by providers that state major units ("12.30")."""
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    outcome: RemoteOutcome
    amount: int | None
    currency: str | None


@dataclass(frozen=True, slots=True)
class RefundResult:
    reference: str
    succeeded: bool
    """False while the provider still processes it; its callback confirms later."""


class PaymentProvider(Protocol):
    name: str

    async def create_payment(self, charge: Charge) -> CreatedPayment: ...

    def parse_callback(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> CallbackEvent:
        """Verify first (signature, freshness, our merchant/app id), then parse.
        Raises `CallbackRejected`."""
        ...

    def respond(self, rejection: CallbackRejected | None) -> Response:
        """The answer in the provider's own format: accepted (or already seen) vs rejected."""
        ...

    async def refund(
        self, *, reference: str, refund_id: uuid.UUID, amount: int, total: int, currency: str
    ) -> RefundResult: ...

    async def query(self, *, reference: str, currency: str) -> RemoteStatus | None:
        """What the provider knows now; None when it keeps no state we can ask about."""
        ...


class ProviderNotConfigured(Exception):
    pass


def secret_text(value: SecretStr | str | None, setting: str) -> str:
    """A key given as PEM text, as a path to a PEM file, or as bare base64 (as consoles show it)."""
    if value is None:
        raise ProviderNotConfigured(f"SHOPKEEPER_{setting.upper()} is not set")
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    raw = raw.strip()
    if not raw:
        raise ProviderNotConfigured(f"SHOPKEEPER_{setting.upper()} is empty")
    if raw.startswith("-----BEGIN"):
        return raw
    if len(raw) < 1024 and ("/" in raw or raw.endswith(".pem")):
        # Bare base64 also contains "/", so a path is only a path if the file is there.
        try:
            path = Path(raw).expanduser()
            if path.is_file():
                return path.read_text().strip()
        except OSError:
            pass
    return raw


def pem(text: str, label: str) -> str:
    """Wrap bare base64 key material in PEM armour; PEM text passes through."""
    if text.startswith("-----BEGIN"):
        return text
    body = "".join(text.split())
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.lower())
    return value or ""
