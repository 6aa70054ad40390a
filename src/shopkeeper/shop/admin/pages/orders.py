"""Orders: the list, and one order with its lines, payments, refunds, transitions and customer,
and the buttons that move it on. Every button calls the orders or payments service, the same
function the API's route calls, so the same transitions are allowed and the same events go out."""

from __future__ import annotations

import re
import uuid

from sqladmin import expose
from starlette.requests import Request
from starlette.responses import Response

from shopkeeper.core.errors import DomainError
from shopkeeper.shop.access import REFUND, WRITE, Caller
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
from shopkeeper.shop.orders import service as orders_service
from shopkeeper.shop.orders.state import ALLOWED_TRANSITIONS, OrderStatus
from shopkeeper.shop.payments import service as payments_service
from shopkeeper.shop.payments.models import Payment, PaymentStatus

ONCE = re.compile(r"[0-9a-f]{32}")
REFUNDABLE = {PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED}
TRACKING_MAX = 100


class OrdersPage(ShopPage):
    name = "Orders"
    icon = "fa-solid fa-receipt"
    identity = "orders"

    @expose("/shop/orders", identity="orders")
    async def orders(self, request: Request) -> Response:
        status = request.query_params.get("status") or None
        if status is not None and status not in set(OrderStatus):
            status = None
        search = (request.query_params.get("q") or "").strip()[:100] or None
        before = parse_uuid(request.query_params.get("before", ""))
        async with runtime_of(request).db.session() as session:
            rows, more = await queries.orders_page(
                session, status=status, search=search, before=before
            )
        return await self.render(
            request,
            "shop/orders.html",
            title="Orders",
            orders=rows,
            more=more,
            status=status,
            search=search or "",
            statuses=list(OrderStatus),
        )

    @expose("/shop/orders/{order_id}", identity="order")
    async def order(self, request: Request) -> Response:
        order_id = parse_uuid(request.path_params["order_id"])
        detail = None
        if order_id is not None:
            async with runtime_of(request).db.session() as session:
                detail = await queries.order_detail(session, order_id)
        if detail is None:
            return await self.render(
                request, "shop/missing.html", title="No such order", status_code=404
            )
        status = OrderStatus(detail.order.status)
        nxt = ALLOWED_TRANSITIONS[status]
        return await self.render(
            request,
            "shop/order.html",
            title=f"Order {detail.order.number}",
            d=detail,
            can_ship=OrderStatus.SHIPPED in nxt and detail.order.shipped_at is None,
            can_deliver=OrderStatus.DELIVERED in nxt,
            can_cancel=OrderStatus.CANCELLED in nxt,
            refundable={p.id for p in detail.payments if _refundable(p)},
            # One key per rendered form: a double click or a resubmitted page refunds once.
            once=uuid.uuid4().hex,
        )

    @expose("/shop/orders/{order_id}/ship", methods=["POST"], identity="order-ship")
    async def ship(self, request: Request) -> Response:
        return await self._act(request, "ship")

    @expose("/shop/orders/{order_id}/deliver", methods=["POST"], identity="order-deliver")
    async def deliver(self, request: Request) -> Response:
        return await self._act(request, "deliver")

    @expose("/shop/orders/{order_id}/cancel", methods=["POST"], identity="order-cancel")
    async def cancel(self, request: Request) -> Response:
        return await self._act(request, "cancel")

    @expose(
        "/shop/orders/{order_id}/payments/{payment_id}/refund",
        methods=["POST"],
        identity="order-refund",
    )
    async def refund(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        here = str(request.url_for("admin:view-order", order_id=order_id))
        if not staff_of(request).can(REFUND):
            return refused(request, here, REFUND)
        payment_id = parse_uuid(request.path_params["payment_id"])
        form = await request.form()
        runtime = runtime_of(request)
        async with runtime.db.session() as session:
            payment = await session.get(Payment, payment_id) if payment_id else None
            if payment is None or str(payment.order_id) != order_id:
                notify(request, "That payment is not this order's.", "danger")
                return back(request, here)
            raw = str(form.get("amount") or "").strip()
            amount = parse_amount(raw, payment.currency) if raw else None
            if raw and not amount:
                notify(request, f"{raw!r} is not an amount in {payment.currency}.", "danger")
                return back(request, here)
            reason = str(form.get("reason") or "").strip()[:200] or "requested"
            once = str(form.get("once") or "")
            dedup_key = f"admin-{once}" if ONCE.fullmatch(once) else None
            try:
                refund = await payments_service.refund_payment(
                    session,
                    payment_id=payment.id,
                    amount=amount,
                    settings=runtime.settings,
                    reason=reason,
                    dedup_key=dedup_key,
                )
            except DomainError as exc:
                return failed(request, here, exc)
            amount_text = money(refund.amount, refund.currency)
            notify(
                request,
                f"Refunded {amount_text}."
                if refund.status == "succeeded"
                else f"Refund of {amount_text} is {refund.status} at the provider.",
            )
        return back(request, here)

    async def _act(self, request: Request, action: str) -> Response:
        raw_id = request.path_params["order_id"]
        here = str(request.url_for("admin:view-order", order_id=raw_id))
        staff = staff_of(request)
        if not staff.can(WRITE):
            return refused(request, here, WRITE)
        order_id = parse_uuid(raw_id)
        if order_id is None:
            return back(request, str(request.url_for("admin:view-orders")))
        form = await request.form()
        async with runtime_of(request).db.session() as session:
            try:
                if action == "ship":
                    tracking = str(form.get("tracking_number") or "").strip()[:TRACKING_MAX]
                    order = await orders_service.ship_order(
                        session,
                        order_id=order_id,
                        principal=staff,
                        tracking_number=tracking or None,
                    )
                elif action == "deliver":
                    order = await orders_service.deliver_order(
                        session, order_id=order_id, principal=staff
                    )
                else:
                    order = await orders_service.cancel_order(
                        session, order_id=order_id, caller=Caller(principal=staff)
                    )
            except DomainError as exc:
                return failed(request, here, exc)
        notify(request, f"Order {order.number} is {order.status.replace('_', ' ')}.")
        return back(request, here)


def _refundable(payment: Payment) -> bool:
    return payment.status in REFUNDABLE and payment.refunded_amount < payment.amount
