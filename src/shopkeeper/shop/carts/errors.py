"""The carts domain's errors (problem+json slugs)."""

from __future__ import annotations

from shopkeeper.core.errors import Conflict, InvalidInput, NotFound


class CartNotFound(NotFound):
    slug, title = "cart-not-found", "Cart not found"


class CartItemNotFound(NotFound):
    slug, title = "cart-item-not-found", "Item not in cart"


class SkuNotFound(NotFound):
    slug, title = "sku-not-found", "Unknown SKU"


class CartClosed(Conflict):
    slug, title = "cart-closed", "Cart already checked out"


class CartEmpty(Conflict):
    slug, title = "cart-empty", "Cart is empty"


class CartFull(Conflict):
    slug, title = "cart-full", "Too many lines in the cart"


class ItemUnavailable(Conflict):
    slug, title = "item-unavailable", "Item no longer sold"


class QuantityLimit(InvalidInput):
    slug, title = "quantity-limit", "Quantity over the per-line limit"
