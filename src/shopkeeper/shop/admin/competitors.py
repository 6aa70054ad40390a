"""The "Competitor prices" admin view: per SKU, our catalog price beside each watched
competitor's latest price and how far below ours it is."""

from __future__ import annotations

from typing import Any, ClassVar

from shopkeeper.core.money import Money
from shopkeeper.shop.admin.views import ReadOnlyView, format_money
from shopkeeper.shop.competitors.models import CompetitorPrice
from shopkeeper.shop.competitors.service import undercut_percent


def our_price(model: object, _attribute: str) -> str:
    variant = getattr(model, "variant", None)
    if variant is None:
        return "not in the catalog"
    money = Money(amount=variant.price, currency=variant.currency)
    return f"{money.to_decimal_string()} {variant.currency}"


def difference(model: object, _attribute: str) -> str:
    """ "-12.5%" when theirs is 12.5% below ours; blank when not comparable."""
    variant = getattr(model, "variant", None)
    if not isinstance(model, CompetitorPrice) or variant is None:
        return ""
    if variant.currency != model.currency:
        return "other currency"
    return f"{-undercut_percent(variant.price, model.amount):+.1f}%"


class CompetitorPriceAdmin(ReadOnlyView, model=CompetitorPrice):
    """Read-only: prices arrive from the crawl's price watches (`CompetitorPriceChanged`)."""

    name = "Competitor price"
    name_plural = "Competitor prices"
    icon = "fa-solid fa-scale-balanced"
    category = "Catalog"
    column_list: ClassVar[Any] = [
        CompetitorPrice.sku, "variant", CompetitorPrice.amount, "difference",
        CompetitorPrice.url, CompetitorPrice.observed_at,
    ]  # fmt: skip
    column_details_list: ClassVar[Any] = column_list
    column_labels: ClassVar[Any] = {
        CompetitorPrice.sku: "SKU",
        "variant": "Our price",
        CompetitorPrice.amount: "Their price",
        "difference": "Theirs vs ours",
        CompetitorPrice.url: "Competitor page",
        CompetitorPrice.observed_at: "Observed at",
    }
    column_formatters: ClassVar[Any] = {
        "variant": our_price,
        CompetitorPrice.amount: format_money,
        "difference": difference,
    }
    column_formatters_detail: ClassVar[Any] = column_formatters
    column_searchable_list: ClassVar[Any] = [CompetitorPrice.sku, CompetitorPrice.url]
    column_sortable_list: ClassVar[Any] = [CompetitorPrice.sku, CompetitorPrice.observed_at]
    column_default_sort: ClassVar[Any] = [(CompetitorPrice.sku, False)]
