"""What the admin UI shows. Users get a safe editable subset; every other domain is read-only,
because its writes carry invariants only its service keeps (see docs/admin.md)."""

from __future__ import annotations

import importlib
import re
import types
from collections.abc import Iterator
from typing import Any, ClassVar

import structlog
from sqladmin import ModelView
from sqlalchemy import inspect
from sqlalchemy.sql import sqltypes
from starlette.requests import Request

from shopkeeper.accounts.models import User
from shopkeeper.core.db import Base
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.money import Money
from shopkeeper.shop.admin.export import SafeExportView

log = structlog.get_logger(__name__)

# Column names that may hold credentials or signing material: never listed, shown or exported.
SENSITIVE_MARKERS = ("password", "secret", "token_hash", "private_key", "api_key", "apiv3_key")
# A payment's `action_value` can be a Stripe client secret: whoever holds it can confirm the
# customer's payment, so staff do not need to see it either.
SENSITIVE_COLUMNS = frozenset({"action_value"})
# Derived search columns (tsvector, normalised text): noise to a person.
INTERNAL_PREFIXES = ("search_",)

# Where each domain keeps its tables, in menu order. A domain whose models module does not exist
# (yet) is skipped, so the admin never stops the application from starting.
DOMAIN_MODELS: dict[str, str] = {
    "Catalog": "shopkeeper.shop.catalog.models",
    "Inventory": "shopkeeper.shop.inventory.models",
    "Carts": "shopkeeper.shop.carts.models",
    "Promotions": "shopkeeper.shop.promotions.models",
    "Shipping": "shopkeeper.shop.shipping.models",
    "Orders": "shopkeeper.shop.orders.models",
    "Payments": "shopkeeper.shop.payments.models",
}

# Columns worth searching when a model has them.
SEARCHABLE_NAMES = (
    "email", "name", "slug", "sku", "code", "number", "status", "provider",
    "provider_reference", "reference", "event_name", "kind",
)  # fmt: skip
LIST_COLUMNS_MAX = 8
# What a person scans a list for, where the table's own column order says otherwise. Names that
# a table does not (or no longer) have are skipped.
PREFERRED_LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("number", "status", "email", "total_amount", "currency", "created_at", "paid_at"),
    "payments": (
        "provider", "status", "amount", "refunded_amount", "currency", "provider_reference",
        "created_at",
    ),
    "products": ("name", "slug", "min_price", "category_id", "archived_at", "created_at"),
    "vouchers": (
        "code", "kind", "value", "used", "usage_limit", "per_customer_limit", "starts_at",
        "ends_at",
    ),
}  # fmt: skip


def is_sensitive(column_name: str) -> bool:
    lowered = column_name.lower()
    return lowered in SENSITIVE_COLUMNS or any(marker in lowered for marker in SENSITIVE_MARKERS)


def is_money_column(column_name: str) -> bool:
    return column_name in {"amount", "price", "min_price", "refunded_amount"} or (
        column_name.endswith("_amount")
    )


def format_money(model: object, attribute: str) -> str:
    """Minor units as the customer saw them: 1999 with USD is "19.99 USD"."""
    amount = getattr(model, attribute)
    currency = getattr(model, "currency", None)
    if not isinstance(amount, int) or not isinstance(currency, str):
        return "" if amount is None else str(amount)
    try:
        return f"{Money(amount=amount, currency=currency).to_decimal_string()} {currency}"
    except ValueError:  # a malformed currency code must not break the page
        return f"{amount} {currency}"


class ReadOnlyView(SafeExportView):
    """Browse, search and export; no create, edit or delete."""

    can_create: ClassVar[bool] = False
    can_edit: ClassVar[bool] = False
    can_delete: ClassVar[bool] = False
    can_import: ClassVar[bool] = False
    page_size: ClassVar[int] = 25


class UserAdmin(SafeExportView, model=User):
    """Staff may rename, deactivate and grant or revoke staff rights. Users are never created
    here (no way to plant an arbitrary password hash) nor deleted (orders keep pointing at them);
    e-mail stays read-only because it is the normalised login identity."""

    name = "User"
    name_plural = "Users"
    icon = "fa-solid fa-user"
    category = "Accounts"
    can_create: ClassVar[bool] = False
    can_delete: ClassVar[bool] = False
    can_import: ClassVar[bool] = False
    column_list: ClassVar[Any] = [
        User.email, User.full_name, User.is_staff, User.is_active, User.created_at,
    ]  # fmt: skip
    column_details_list: ClassVar[Any] = [
        User.id, User.email, User.full_name, User.is_staff, User.is_active, User.created_at,
    ]  # fmt: skip
    column_export_list: ClassVar[Any] = [
        User.id, User.email, User.full_name, User.is_staff, User.is_active, User.created_at,
    ]  # fmt: skip
    form_columns: ClassVar[Any] = [User.full_name, User.is_staff, User.is_active]
    column_searchable_list: ClassVar[Any] = [User.email, User.full_name]
    column_sortable_list: ClassVar[Any] = [User.email, User.created_at]
    column_default_sort: ClassVar[Any] = (User.created_at, True)
    page_size: ClassVar[int] = 25

    async def after_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        # Deactivation or lost staff rights close the user's live sockets at once.
        runtime = request.app.state.runtime_of()
        await runtime.realtime.principal_changed(model.id)


class OutboxEventAdmin(ReadOnlyView, model=OutboxEvent):
    """Read-only: the relay owns publication state; editing a row would re-send or lose events."""

    name = "Outbox event"
    name_plural = "Outbox events"
    icon = "fa-solid fa-envelope-open-text"
    category = "Operations"
    column_list: ClassVar[Any] = [
        OutboxEvent.name, OutboxEvent.created_at, OutboxEvent.published_at, OutboxEvent.attempts,
    ]  # fmt: skip
    column_searchable_list: ClassVar[Any] = [OutboxEvent.name]
    column_sortable_list: ClassVar[Any] = [OutboxEvent.created_at, OutboxEvent.published_at]
    column_default_sort: ClassVar[Any] = (OutboxEvent.created_at, True)


def prettify(class_name: str) -> str:
    """ "StockLevel" -> "Stock level"."""
    words = re.findall(r"[A-Z][a-z0-9]*|[a-z0-9]+", class_name)
    return " ".join([words[0], *(word.lower() for word in words[1:])]) if words else class_name


def plural(name: str) -> str:
    if name.endswith("y") and name[-2:-1] not in tuple("aeiou"):
        return name[:-1] + "ies"
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    return name + "s"


def read_only_view(model: type[Base], category: str) -> type[ModelView]:
    """A read-only view for a domain table whose schema the admin need not know in advance."""
    properties = [
        prop
        for prop in inspect(model).column_attrs
        if not is_sensitive(prop.key) and not prop.key.startswith(INTERNAL_PREFIXES)
    ]
    columns = [prop.key for prop in properties]
    # JSON documents (attributes, addresses, raw callbacks) and long text make an unreadable
    # list page; the details page shows them.
    scalar = [
        prop.key
        for prop in properties
        if prop.key != "id" and not isinstance(prop.columns[0].type, sqltypes.JSON | sqltypes.Text)
    ]
    preferred = [
        name
        for name in PREFERRED_LIST_COLUMNS.get(str(getattr(model, "__tablename__", "")), ())
        if name in columns
    ]
    money = (
        {name: format_money for name in columns if is_money_column(name)}
        if "currency" in columns
        else {}
    )
    listed = preferred or scalar or columns
    if money:  # amounts already carry their currency
        listed = [name for name in listed if name != "currency"]
    name = prettify(model.__name__)
    attributes: dict[str, Any] = {
        "name": name,
        "name_plural": plural(name),
        "category": category,
        "column_labels": {column: column.replace("_", " ").capitalize() for column in columns},
        "column_list": listed[:LIST_COLUMNS_MAX],
        "column_details_list": columns,
        "column_export_list": columns,
        "column_formatters": money,
        "column_formatters_detail": money,
        "column_searchable_list": [name for name in columns if name in SEARCHABLE_NAMES],
        "column_sortable_list": [
            name for name in columns if name.endswith("_at") or name in SEARCHABLE_NAMES
        ],
    }
    if "created_at" in columns:
        attributes["column_default_sort"] = ("created_at", True)

    def body(namespace: dict[str, Any]) -> None:
        namespace.update(attributes, __module__=__name__)

    view: type[ModelView] = types.new_class(
        f"{model.__name__}Admin", (ReadOnlyView,), {"model": model}, body
    )
    return view


def domain_models(module_name: str) -> Iterator[type[Base]]:
    """The mapped classes a domain's models module defines, in definition order."""
    module = importlib.import_module(module_name)
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Base)
            and value is not Base
            and value.__module__ == module_name
            and hasattr(value, "__table__")
        ):
            yield value


def domain_views() -> tuple[list[type[ModelView]], list[str]]:
    """Read-only views of every domain table that exists, and the domains that have none yet."""
    views: list[type[ModelView]] = []
    missing: list[str] = []
    for category, module_name in DOMAIN_MODELS.items():
        try:
            models = list(domain_models(module_name))
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise  # a real import error inside the domain must not be hidden
            missing.append(category)
            continue
        views.extend(read_only_view(model, category) for model in models)
    if missing:
        log.info("admin_domains_missing", domains=missing)
    return views, missing
