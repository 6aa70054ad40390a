"""Payments needing review: the provider captured another amount or currency than was asked.
Accept (the order becomes paid) or refund what was captured, through the payments domain's
`resolve_payment`, the function behind `POST /payments/{id}/resolve`."""

from __future__ import annotations

from sqladmin import expose
from starlette.requests import Request
from starlette.responses import Response

from shopkeeper.core.errors import DomainError
from shopkeeper.shop.access import REFUND
from shopkeeper.shop.admin.pages import queries
from shopkeeper.shop.admin.pages.common import (
    ShopPage,
    back,
    failed,
    money,
    notify,
    parse_uuid,
    refused,
    runtime_of,
    staff_of,
)
from shopkeeper.shop.payments import review

NOTE_MAX = 500


class ReviewPage(ShopPage):
    name = "Payments to review"
    icon = "fa-solid fa-scale-balanced"
    identity = "review"

    @expose("/shop/review", identity="review")
    async def queue(self, request: Request) -> Response:
        async with runtime_of(request).db.session() as session:
            items = await queries.needs_review(session)
        return await self.render(
            request, "shop/review.html", title="Payments to review", items=items
        )

    @expose("/shop/review/{payment_id}/{action}", methods=["POST"], identity="review-resolve")
    async def resolve(self, request: Request) -> Response:
        here = str(request.url_for("admin:view-review"))
        staff = staff_of(request)
        if not staff.can(REFUND):
            return refused(request, here, REFUND)
        payment_id = parse_uuid(request.path_params["payment_id"])
        action = request.path_params["action"]
        if payment_id is None or action not in ("accept", "refund"):
            notify(request, "No such decision.", "danger")
            return back(request, here)
        form = await request.form()
        note = str(form.get("note") or "").strip()[:NOTE_MAX] or None
        runtime = runtime_of(request)
        async with runtime.db.session() as session:
            try:
                payment = await review.resolve_payment(
                    session,
                    payment_id=payment_id,
                    action="accept" if action == "accept" else "refund",
                    actor_id=staff.user_id,
                    settings=runtime.settings,
                    note=note,
                )
            except DomainError as exc:
                return failed(request, here, exc)
            amount = money(payment.amount, payment.currency)
            status = payment.status.replace("_", " ")
        verb = "Accepted" if action == "accept" else "Refunded"
        notify(request, f"{verb}: the payment of {amount} is {status}.")
        return back(request, here)
