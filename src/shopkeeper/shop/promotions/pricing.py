"""The discount arithmetic, pure: integers of minor units, rounded half-even once per order."""

from __future__ import annotations

BASIS_POINTS = 10_000


def half_even_share(amount: int, numerator: int, denominator: int) -> int:
    """`amount * numerator / denominator` rounded half-even to a whole minor unit, exactly
    (integer arithmetic; never a float). `amount` and `denominator` are non-negative."""
    quotient, remainder = divmod(amount * numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def percentage_discount(eligible: int, basis_points: int) -> int:
    """The share of `eligible` a percentage voucher takes off, never more than `eligible`."""
    return min(eligible, half_even_share(eligible, basis_points, BASIS_POINTS))


def fixed_discount(eligible: int, value: int) -> int:
    """A fixed amount off, never more than what it applies to."""
    return max(0, min(eligible, value))


def tax_and_total(
    *, subtotal: int, discount: int, shipping: int, rate_bps: int, prices_include_tax: bool
) -> tuple[int, int]:
    """(tax, total) of an order. Tax is on `subtotal - discount + shipping`, rounded half-even
    once. When prices include tax it is the share they already hold and adds nothing."""
    taxable = subtotal - discount + shipping
    if prices_include_tax:
        return half_even_share(taxable, rate_bps, BASIS_POINTS + rate_bps), taxable
    tax = half_even_share(taxable, rate_bps, BASIS_POINTS)
    return tax, taxable + tax
