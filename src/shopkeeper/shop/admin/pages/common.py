"""What every shop page shares: who is signed in and what they may do, one-line notices after
an action, and the filters that turn minor units, addresses and user ids into what a person
reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqladmin import BaseView
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from shopkeeper.core.errors import DomainError
from shopkeeper.core.money import MAX_PRICE, Money, parse_decimal_amount
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Principal
from shopkeeper.shop.access import READ, REFUND, WRITE

NOTICE_KEY = "shop_notice"


def staff_of(request: Request) -> Principal:
    """The signed-in staff user, as `StaffAuthentication.authenticate` left them."""
    principal: Principal | None = getattr(request.state, "staff", None)
    if principal is None:  # not reached: every page is behind login_required
        return Principal(user_id=uuid.UUID(int=0))
    return principal


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime_of()
    return runtime


def allowed(request: Request) -> dict[str, bool]:
    """What the page may offer: buttons a user cannot use are not shown."""
    staff = staff_of(request)
    return {"write": staff.can(WRITE), "refund": staff.can(REFUND)}


class ShopPage(BaseView):
    """A page of the shop's back office: visible to anyone with `shop:read`, at the top of the
    menu (the tables sqladmin lists follow, grouped by domain)."""

    permission: str = READ

    def is_accessible(self, request: Request) -> bool:
        return staff_of(request).can(self.permission)

    async def render(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> Response:
        notice = request.session.pop(NOTICE_KEY, None)
        return await self.templates.TemplateResponse(
            request,
            template,
            {"notice": notice, "may": allowed(request), "staff": staff_of(request), **context},
            status_code=status_code,
        )


def notify(request: Request, text: str, level: str = "success") -> None:
    request.session[NOTICE_KEY] = {"text": text, "level": level}


def back(request: Request, url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def refused(request: Request, url: str, permission: str) -> RedirectResponse:
    notify(request, f"Your role does not allow this (it needs {permission}).", "danger")
    return back(request, url)


def failed(request: Request, url: str, error: DomainError) -> RedirectResponse:
    notify(request, str(error) or error.title, "danger")
    return back(request, url)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def money(amount: int | None, currency: str | None) -> str:
    """1999 and "USD" -> "19.99 USD"."""
    if amount is None:
        return "—"
    if not currency:
        return str(amount)
    try:
        return f"{Money(amount=amount, currency=currency).to_decimal_string()} {currency}"
    except ValueError:
        return f"{amount} {currency}"


def parse_amount(text: str, currency: str) -> int | None:
    """ "19.99" in USD -> 1999; None for what is not a positive amount of that currency."""
    try:
        amount = parse_decimal_amount(text.strip().replace(",", "."), currency)
    except ValueError:
        return None
    return amount if 0 <= amount <= MAX_PRICE else None


def when(value: datetime | None) -> str:
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    today = datetime.now(UTC).date()
    if value.date() == today:
        return value.strftime("today %H:%M")
    return value.strftime("%d %b %Y %H:%M")


def address_lines(address: dict[str, Any] | None) -> list[str]:
    """A shipping address as it goes on a parcel."""
    if not address:
        return []
    city = " ".join(str(p) for p in (address.get("postal_code"), address.get("city")) if p)
    parts = [address.get("name"), address.get("line1"), address.get("line2"), city]
    country = address.get("country")
    if country:
        parts.append(str(country).upper())
    return [str(part) for part in parts if part]


def status_label(status: str) -> str:
    return status.replace("_", " ")


STATUS_COLOURS = {
    "pending_payment": "yellow",
    "paid": "green",
    "shipped": "blue",
    "delivered": "teal",
    "cancelled": "secondary",
    "expired": "secondary",
    "refunded": "purple",
    "partially_refunded": "purple",
    "needs_review": "orange",
    "succeeded": "green",
    "failed": "red",
    "pending": "yellow",
}


def install_filters(env: Any) -> None:
    env.filters["money"] = money
    env.filters["when"] = when
    env.filters["address_lines"] = address_lines
    env.filters["status_label"] = status_label
    env.globals["status_colour"] = lambda status: STATUS_COLOURS.get(status, "secondary")
