"""Money: an integer count of minor units and an ISO 4217 currency. Never a float."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

# Minor units per major unit, for the currencies whose exponent is not 2 (ISO 4217).
_EXPONENTS = {
    "JPY": 0,
    "KRW": 0,
    "VND": 0,
    "CLP": 0,
    "BHD": 3,
    "KWD": 3,
    "JOD": 3,
    "OMR": 3,
    "TND": 3,
}

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$")]


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: StrictInt
    currency: Currency

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __mul__(self, factor: int) -> Money:
        return Money(amount=self.amount * factor, currency=self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=0, currency=currency)

    def to_decimal_string(self) -> str:
        """Major units as providers such as Alipay want them: 1234 USD -> "12.34"."""
        exponent = minor_unit_exponent(self.currency)
        if exponent == 0:
            return str(self.amount)
        sign = "-" if self.amount < 0 else ""
        whole, fraction = divmod(abs(self.amount), 10**exponent)
        return f"{sign}{whole}.{fraction:0{exponent}d}"


def minor_unit_exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def parse_decimal_amount(text: str, currency: str) -> int:
    """Parse a provider's decimal amount ("12.30") into minor units without going through float."""
    exponent = minor_unit_exponent(currency)
    text = text.strip()
    negative = text.startswith("-")
    whole, _, fraction = text.lstrip("+-").partition(".")
    if not whole.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > exponent:
        raise ValueError(f"not a {currency} amount: {text!r}")
    value = int(whole) * 10**exponent + int((fraction or "0").ljust(exponent, "0") or "0")
    return int(-value if negative else value)
