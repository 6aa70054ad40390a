"""Carts reuse the inventory fixtures: catalog variants with stock."""

from __future__ import annotations

from tests.shop.inventory.conftest import create_product, stock

__all__ = ["create_product", "stock"]
