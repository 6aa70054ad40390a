"""The shop's daily work in the admin: today, orders, products, stock and payments to review.

Pages are sqladmin `BaseView`s on sqladmin's own layout, login and session; their templates live
in `shopkeeper/templates/admin/shop/`. Another page of the shop (competitor prices) joins the
menu by subclassing `ShopPage` and being listed in `SHOP_PAGES`."""

from __future__ import annotations

from sqladmin import Admin, BaseView

from shopkeeper.shop.admin.pages.catalog import ProductsPage, StockPage
from shopkeeper.shop.admin.pages.common import ShopPage, install_filters
from shopkeeper.shop.admin.pages.home import TodayPage
from shopkeeper.shop.admin.pages.orders import OrdersPage
from shopkeeper.shop.admin.pages.payments import ReviewPage

SHOP_PAGES: list[type[ShopPage]] = [TodayPage, OrdersPage, ReviewPage, ProductsPage, StockPage]

__all__ = ["SHOP_PAGES", "ShopPage", "add_shop_pages"]


def add_shop_pages(admin: Admin, pages: list[type[ShopPage]] | None = None) -> None:
    install_filters(admin.templates.env)
    for page in pages if pages is not None else SHOP_PAGES:
        identity = page.identity
        admin.add_base_view(page)
        # sqladmin names a view after the last route it registers; the menu links the first.
        _keep_identity(page, identity)


def _keep_identity(page: type[BaseView], identity: str) -> None:
    page.identity = identity
