"""Checkout, orders, and the live order channels."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket, status
from starlette.responses import Response

from shopkeeper.accounts.liveness import AccountGone, current_permissions, ensure_active_user
from shopkeeper.accounts.permissions import CurrentUser
from shopkeeper.core.db import Session
from shopkeeper.core.errors import DomainError, problem_responses
from shopkeeper.core.idempotency import (
    IdempotencyClaim,
    IdempotencyKeyHeader,
    idempotency_scope,
    request_fingerprint,
    run_idempotent_in_transaction,
)
from shopkeeper.core.realtime import (
    CLOSE_FORBIDDEN,
    CLOSE_UNAUTHORIZED,
    authenticate_websocket,
    close_websocket,
    token_expiry,
)
from shopkeeper.core.runtime import AppRuntime, Runtime
from shopkeeper.core.security import Principal
from shopkeeper.core.writes import WriteBatch
from shopkeeper.shop.access import (
    READ,
    KnownCaller,
    ShopWriter,
    UnverifiedShopCaller,
)
from shopkeeper.shop.orders import checkout, service
from shopkeeper.shop.orders.handlers import ADMIN_TOPIC, order_topic
from shopkeeper.shop.orders.models import Order
from shopkeeper.shop.orders.schemas import (
    OrderOut,
    OrderPage,
    OrderTransitionOut,
    PlaceOrderRequest,
    ShipRequest,
)
from shopkeeper.shop.orders.state import OrderStatus

router = APIRouter(tags=["orders"])


def _order_response(order: Order, status_code: int = status.HTTP_200_OK) -> Response:
    # Serialized by pydantic-core straight to bytes: the stored Idempotency-Key answer is these.
    return Response(
        OrderOut.of(order).model_dump_json(),
        status_code=status_code,
        media_type="application/json",
        headers={"Location": f"/api/v1/orders/{order.id}"}
        if status_code == status.HTTP_201_CREATED
        else None,
    )


@router.post(
    "/orders",
    status_code=status.HTTP_201_CREATED,
    response_model=OrderOut,
    responses=problem_responses(
        400,
        401,
        404,
        409,
        422,
        s400="`idempotency-key-required`, `invalid-idempotency-key`",
        s404="`cart-not-found`: no such cart, or not yours; `user-not-found`: the signed-in "
        "account is deactivated; `voucher-not-found`: the cart's voucher code no longer exists",
        s409="`insufficient-stock` (extension `sku`; nothing reserved), `cart-empty`, "
        "`cart-closed`, `item-unavailable`, `currency-mismatch`, `idempotency-key-in-progress`, "
        "`voucher-not-applicable` (extension `reason`: `expired`, `not-started`, `min-subtotal`, "
        "`used-up`, `per-customer-limit`, `no-eligible-items`; nothing reserved, the cart stays "
        "open with its voucher), `shipping-method-unavailable` (the method does not serve the "
        "address's country or the cart's weight)",
        s422="`validation-error`; `idempotency-key-reused` (same key, different request); "
        "`shipping-method-required` (shipping zones exist and no `shipping_method_id` was sent)",
    ),
)
async def place_order(
    body: PlaceOrderRequest,
    request: Request,
    session: Session,
    runtime: AppRuntime,
    caller: UnverifiedShopCaller,
    idempotency_key: IdempotencyKeyHeader,
) -> Response:
    """Check out a cart: reserve its stock until `expires_at` and create a `pending_payment`
    order. A retry with the same `Idempotency-Key` and body replays the first answer."""
    payload = body.model_dump(mode="json")
    if payload["shipping_method_id"] is None:
        # Unsent, the field leaves the request's fingerprint as it was before it existed.
        del payload["shipping_method_id"]
    # Whether the signed-in buyer's account still exists is read by checkout's own statement
    # (401 `account-gone` from there), not by a round trip before it. Any other answer (a
    # replay, a refusal) is given only once the account is checked the ordinary way, so a
    # vanished account is told 401 whatever its request.
    placed = False

    async def operation(claim: IdempotencyClaim) -> Response:
        nonlocal placed

        def store_answer(order: Order, writes: WriteBatch) -> None:
            claim.save_in(writes, _order_response(order, status.HTTP_201_CREATED))

        await checkout.place_order(
            session,
            settings=runtime.settings,
            caller=caller,
            cart_id=body.cart_id,
            email=payload["email"],
            shipping_address=payload["shipping_address"],
            shipping_method_id=body.shipping_method_id,
            store_answer=store_answer,
        )
        assert claim.saved is not None
        placed = True
        return claim.saved.to_response(replayed=False)

    try:
        response = await run_idempotent_in_transaction(
            session,
            scope=idempotency_scope(caller.principal, caller.cart_token),
            key=idempotency_key,
            fingerprint=request_fingerprint(request.method, request.url.path, payload),
            operation=operation,
        )
    except AccountGone:
        raise
    except DomainError:
        await _ensure_account(runtime, caller.user_id)
        raise
    if not placed:
        await _ensure_account(runtime, caller.user_id)
    return response


async def _ensure_account(runtime: Runtime, user_id: uuid.UUID | None) -> None:
    if user_id is not None:
        await ensure_active_user(runtime.db, user_id)


@router.get(
    "/orders",
    response_model=OrderPage,
    responses=problem_responses(401, 422, s422="`validation-error`, `invalid-cursor`"),
)
async def list_orders(
    principal: CurrentUser,
    session: Session,
    status_filter: Annotated[
        OrderStatus | None, Query(alias="status", description="Only orders in this status")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OrderPage:
    """The caller's orders, newest first; staff see everyone's."""
    orders, next_cursor = await service.list_orders(
        session, principal=principal, status=status_filter, limit=limit, cursor=cursor
    )
    return OrderPage(items=[OrderOut.of(order) for order in orders], next_cursor=next_cursor)


@router.get(
    "/orders/{order_id}",
    response_model=OrderOut,
    responses=problem_responses(401, 404, 422, s404="`order-not-found` (or not yours)"),
)
async def get_order(order_id: uuid.UUID, caller: KnownCaller, session: Session) -> OrderOut:
    order = await service.get_order(session, order_id=order_id, caller=caller)
    return OrderOut.of(order)


@router.get(
    "/orders/{order_id}/transitions",
    response_model=list[OrderTransitionOut],
    responses=problem_responses(401, 404, 422, s404="`order-not-found` (or not yours)"),
)
async def list_order_transitions(
    order_id: uuid.UUID, caller: KnownCaller, session: Session
) -> list[OrderTransitionOut]:
    """The order's audit trail: every status change, when and by whom."""
    transitions = await service.order_transitions(session, order_id=order_id, caller=caller)
    return [OrderTransitionOut.of(transition) for transition in transitions]


@router.post(
    "/orders/{order_id}/cancel",
    response_model=OrderOut,
    responses=problem_responses(
        401,
        404,
        409,
        422,
        s404="`order-not-found` (or not yours)",
        s409="`invalid-transition` (shipped, delivered, already cancelled or expired)",
    ),
)
async def cancel_order(order_id: uuid.UUID, caller: KnownCaller, session: Session) -> OrderOut:
    """Cancel; reserved stock is released and a paid order is refunded in full."""
    order = await service.cancel_order(session, order_id=order_id, caller=caller)
    return OrderOut.of(order)


@router.post(
    "/orders/{order_id}/ship",
    response_model=OrderOut,
    responses=problem_responses(
        401, 403, 404, 409, 422, s409="`invalid-transition` (only a paid order ships)"
    ),
)
async def ship_order(
    order_id: uuid.UUID,
    principal: ShopWriter,
    session: Session,
    body: ShipRequest | None = None,
) -> OrderOut:
    """Staff: the order ships and its units leave `on_hand`."""
    order = await service.ship_order(
        session,
        order_id=order_id,
        principal=principal,
        tracking_number=body.tracking_number if body else None,
    )
    return OrderOut.of(order)


@router.post(
    "/orders/{order_id}/deliver",
    response_model=OrderOut,
    responses=problem_responses(
        401, 403, 404, 409, 422, s409="`invalid-transition` (only a shipped order is delivered)"
    ),
)
async def deliver_order(order_id: uuid.UUID, principal: ShopWriter, session: Session) -> OrderOut:
    """Staff: the carrier delivered the order."""
    order = await service.deliver_order(session, order_id=order_id, principal=principal)
    return OrderOut.of(order)


@router.websocket("/ws/orders/{order_id}")
async def order_updates(websocket: WebSocket, order_id: str) -> None:
    """`order.status` messages for one order: its owner or staff (`?token=`); others 4403."""
    runtime: Runtime = websocket.app.state.runtime
    principal = await authenticate_websocket(websocket, runtime.settings)
    if principal is None:
        return
    parsed = _parse_uuid(order_id)
    visible = False
    if parsed is not None:
        async with runtime.db.session() as session:
            visible = await service.is_order_visible(session, order_id=parsed, principal=principal)
    if parsed is None or not visible:
        await close_websocket(websocket, CLOSE_FORBIDDEN, "not your order")
        return
    user_id = principal.user_id

    async def reauthorize() -> int | None:
        permissions = await current_permissions(runtime.db, user_id)
        if permissions is None:
            return CLOSE_UNAUTHORIZED
        now = Principal(user_id=user_id, permissions=permissions)
        async with runtime.db.session() as session:
            still = await service.is_order_visible(session, order_id=parsed, principal=now)
        return None if still else CLOSE_FORBIDDEN

    await runtime.realtime.serve(
        websocket,
        [order_topic(parsed)],
        user_id=user_id,
        expires_at=token_expiry(websocket),
        reauthorize=reauthorize,
    )


@router.websocket("/ws/admin")
async def admin_updates(websocket: WebSocket) -> None:
    """Staff: `order.created`, `order.paid` and `stock.low`."""
    runtime: Runtime = websocket.app.state.runtime
    principal = await authenticate_websocket(websocket, runtime.settings)
    if principal is None:
        return
    if not principal.can(READ):
        await close_websocket(websocket, CLOSE_FORBIDDEN, "staff only")
        return
    user_id = principal.user_id

    async def reauthorize() -> int | None:
        permissions = await current_permissions(runtime.db, user_id)
        if permissions is None:
            return CLOSE_UNAUTHORIZED
        return (
            None
            if Principal(user_id=user_id, permissions=permissions).can(READ)
            else CLOSE_FORBIDDEN
        )

    await runtime.realtime.serve(
        websocket,
        [ADMIN_TOPIC],
        user_id=user_id,
        expires_at=token_expiry(websocket),
        reauthorize=reauthorize,
    )


def _parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
