"""Money: an integer count of minor units and an ISO 4217 currency. Never a float.

Every amount is bounded here, once: no amount is negative and none exceeds `MAX_AMOUNT`, which
BIGINT columns hold; a price a client sets is at most `MAX_PRICE`. Arithmetic that would leave
the range raises `AmountOutOfRange` (422) instead of storing or charging a wrong figure.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from shopkeeper.core.bounds import WholeNumber, between
from shopkeeper.core.errors import InvalidInput

MAX_PRICE = 10**12
"""The largest unit price, in minor units (ten billion dollars)."""
MAX_AMOUNT = 10**18
"""The largest amount of any kind (totals of bounded lines stay far below; BIGINT holds it)."""

Amount = Annotated[int, between(0, MAX_AMOUNT), WholeNumber]
PriceAmount = Annotated[int, between(0, MAX_PRICE), WholeNumber]

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


class AmountOutOfRange(InvalidInput):
    slug, title = "amount-out-of-range", "Amount out of range"


class Money(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: Amount
    currency: Currency

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return self._with(self.amount + other.amount)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return self._with(self.amount - other.amount)

    def __mul__(self, factor: int) -> Money:
        return self._with(self.amount * factor)

    def _with(self, amount: int) -> Money:
        if not 0 <= amount <= MAX_AMOUNT:
            raise AmountOutOfRange(f"An amount must be between 0 and {MAX_AMOUNT} minor units")
        return Money(amount=amount, currency=self.currency)

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


class Price(Money):
    """A unit price as a client sets it: at most `MAX_PRICE` minor units."""

    amount: PriceAmount


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
