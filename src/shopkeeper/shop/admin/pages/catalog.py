"""Products with their variants, prices and stock on one page, and the stock of every SKU per
warehouse. A price goes through the catalog's `update_variant`, a stock count through the
inventory's `set_stock_level` (refused below what orders already hold), a variant's archive
through `archive_variant`: the API's own functions."""

from __future__ import annotations

from pydantic import ValidationError
from sqladmin import expose
from starlette.requests import Request
from starlette.responses import Response

from shopkeeper.core.errors import DomainError
from shopkeeper.shop.access import WRITE
from shopkeeper.shop.admin.pages import queries
from shopkeeper.shop.admin.pages.common import (
    ShopPage,
    back,
    failed,
    money,
    notify,
    parse_amount,
    parse_uuid,
    refused,
    runtime_of,
    staff_of,
)
from shopkeeper.shop.catalog import variants as variants_service
from shopkeeper.shop.catalog.models import Product
from shopkeeper.shop.catalog.schemas import VariantPatch
from shopkeeper.shop.inventory import service as inventory_service
from shopkeeper.shop.inventory.service import MAX_QUANTITY

NAME_MAX = 200


class ProductsPage(ShopPage):
    name = "Products"
    icon = "fa-solid fa-box"
    identity = "products"

    @expose("/shop/products", identity="products")
    async def products(self, request: Request) -> Response:
        search = (request.query_params.get("q") or "").strip()[:100] or None
        after = request.query_params.get("after") or None
        async with runtime_of(request).db.session() as session:
            rows, more = await queries.products_page(session, search=search, after=after)
        return await self.render(
            request, "shop/products.html", title="Products", rows=rows, more=more,
            search=search or "",
        )  # fmt: skip

    @expose("/shop/products/{product_id}", identity="product")
    async def product(self, request: Request) -> Response:
        product_id = parse_uuid(request.path_params["product_id"])
        runtime = runtime_of(request)
        async with runtime.db.session() as session:
            product = await session.get(Product, product_id) if product_id else None
            if product is None:
                return await self.render(
                    request, "shop/missing.html", title="No such product", status_code=404
                )
            rows = await queries.variant_rows(
                session,
                default_threshold=runtime.settings.stock_low_threshold,
                product_id=product.id,
            )
            warehouses = await queries.warehouses(session)
        return await self.render(
            request, "shop/product.html", title=product.name, product=product, rows=rows,
            warehouses=warehouses, here=str(request.url),
        )  # fmt: skip

    @expose("/shop/variants/{sku}/edit", methods=["POST"], identity="variant-edit")
    async def edit_variant(self, request: Request) -> Response:
        """Name and price of one variant, through the catalog's `update_variant`."""
        form = await request.form()
        here = _return_to(request, str(form.get("next") or ""))
        if not staff_of(request).can(WRITE):
            return refused(request, here, WRITE)
        sku = request.path_params["sku"]
        runtime = runtime_of(request)
        currency = runtime.settings.currency
        changes: dict[str, object] = {}
        raw_price = str(form.get("price") or "").strip()
        if raw_price:
            amount = parse_amount(raw_price, currency)
            if amount is None:
                notify(request, f"{raw_price!r} is not a price in {currency}.", "danger")
                return back(request, here)
            changes["price"] = {"amount": amount, "currency": currency}
        if "name" in form:
            changes["name"] = str(form.get("name") or "").strip()[:NAME_MAX] or None
        try:
            patch = VariantPatch.model_validate(changes)
        except ValidationError as exc:
            notify(request, "; ".join(str(e["msg"]) for e in exc.errors()), "danger")
            return back(request, here)
        async with runtime.db.session() as session:
            try:
                variant = await variants_service.update_variant(
                    session, cache=runtime.cache, currency=currency, sku=sku, body=patch
                )
            except DomainError as exc:
                return failed(request, here, exc)
        price = variant.get("price") or {}
        notify(
            request,
            f"{sku} now sells at {money(price.get('amount'), price.get('currency'))}.",
        )
        return back(request, here)

    @expose("/shop/variants/{sku}/archive", methods=["POST"], identity="variant-archive")
    async def archive_variant(self, request: Request) -> Response:
        form = await request.form()
        here = _return_to(request, str(form.get("next") or ""))
        if not staff_of(request).can(WRITE):
            return refused(request, here, WRITE)
        sku = request.path_params["sku"]
        runtime = runtime_of(request)
        async with runtime.db.session() as session:
            try:
                await variants_service.archive_variant(session, cache=runtime.cache, sku=sku)
            except DomainError as exc:
                return failed(request, here, exc)
        notify(request, f"{sku} is archived: no longer listed or sellable.")
        return back(request, here)


class StockPage(ShopPage):
    name = "Stock"
    icon = "fa-solid fa-warehouse"
    identity = "stock"

    @expose("/shop/stock", identity="stock")
    async def stock(self, request: Request) -> Response:
        search = (request.query_params.get("q") or "").strip()[:100] or None
        runtime = runtime_of(request)
        async with runtime.db.session() as session:
            rows = await queries.variant_rows(
                session, default_threshold=runtime.settings.stock_low_threshold, search=search
            )
            warehouses = await queries.warehouses(session)
        return await self.render(
            request, "shop/stock.html", title="Stock", rows=rows, warehouses=warehouses,
            search=search or "", here=str(request.url),
        )  # fmt: skip

    @expose("/shop/stock/{sku}/{warehouse}", methods=["POST"], identity="stock-set")
    async def set_stock(self, request: Request) -> Response:
        """A stock count: the units on hand in one warehouse, through `set_stock_level`."""
        form = await request.form()
        here = _return_to(request, str(form.get("next") or ""))
        if not staff_of(request).can(WRITE):
            return refused(request, here, WRITE)
        sku, warehouse = request.path_params["sku"], request.path_params["warehouse"]
        raw = str(form.get("on_hand") or "").strip()
        if not raw.isdigit() or int(raw) > MAX_QUANTITY:
            notify(request, f"{raw!r} is not a number of units.", "danger")
            return back(request, here)
        async with runtime_of(request).db.session() as session:
            try:
                level = await inventory_service.set_stock_level(
                    session, sku=sku, warehouse_code=warehouse, on_hand=int(raw)
                )
            except DomainError as exc:
                return failed(request, here, exc)
        notify(
            request,
            f"{sku} in {warehouse}: {level.on_hand} on hand, {level.reserved} reserved, "
            f"{level.on_hand - level.reserved} available.",
        )
        return back(request, here)


def _return_to(request: Request, wanted: str) -> str:
    """Back to the page the form was on; only a path inside the admin, never another site."""
    base = str(request.url_for("admin:view-stock"))
    prefix = base[: base.index("/shop/")]
    if wanted.startswith(prefix + "/shop/") and "//" not in wanted[len(prefix) :]:
        return wanted
    return base
