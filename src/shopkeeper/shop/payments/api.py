"""Payments: start one for an order, read it, refund it, receive provider callbacks."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from starlette.responses import JSONResponse

from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.idempotency import (
    IdempotencyClaim,
    IdempotencyKeyHeader,
    idempotency_scope,
    request_fingerprint,
    require_idempotency_key,
    run_idempotent,
)
from shopkeeper.core.runtime import AppRuntime
from shopkeeper.shop.access import KnownCaller, PaymentsRefunder, ShopCaller, ShopReader
from shopkeeper.shop.payments import callbacks, review, sandbox, service
from shopkeeper.shop.payments.models import PaymentStatus
from shopkeeper.shop.payments.providers import ProviderName
from shopkeeper.shop.payments.schemas import (
    CreatePaymentRequest,
    PaymentOut,
    PaymentPage,
    RefundOut,
    RefundRequest,
    ResolveRequest,
    SandboxOutcomeRequest,
)

router = APIRouter(tags=["payments"])

_IDEMPOTENCY_400 = "`idempotency-key-required`, `invalid-idempotency-key`"
_IDEMPOTENCY_422 = "`validation-error`; `idempotency-key-reused` (same key, different request)"
_NO_CALLER_401 = "`unauthorized`: neither a bearer token nor the guest's `X-Cart-Token`"


@router.post(
    "/orders/{order_id}/payments",
    status_code=status.HTTP_201_CREATED,
    response_model=PaymentOut,
    responses=problem_responses(
        400,
        401,
        404,
        409,
        422,
        502,
        s400=_IDEMPOTENCY_400,
        s401=_NO_CALLER_401,
        s404="`order-not-found`: no such order, or not yours (guests: not placed with this "
        "`X-Cart-Token`)",
        s409="`order-not-payable`, `payment-in-progress` (extension `payment_id`), "
        "`provider-unavailable`, `idempotency-key-in-progress`",
        s422=_IDEMPOTENCY_422,
        s502="`provider-error`: the provider refused or did not answer",
    ),
)
async def create_payment(
    order_id: uuid.UUID,
    body: CreatePaymentRequest,
    request: Request,
    session: Session,
    runtime: AppRuntime,
    caller: ShopCaller,
    idempotency_key: IdempotencyKeyHeader,
) -> Response:
    """Start paying an order; `action` tells the client what to do next (redirect, confirm
    with Stripe.js, show a QR code). Amount and currency are the order's. A guest pays with the
    `X-Cart-Token` the order was placed with."""

    async def operation(_claim: IdempotencyClaim) -> Response:
        payment = await service.create_payment(
            session,
            order_id=order_id,
            caller=caller,
            provider_name=body.provider,
            settings=runtime.settings,
        )
        return JSONResponse(
            PaymentOut.of(payment).model_dump(mode="json"),
            status_code=status.HTTP_201_CREATED,
            headers={
                "Location": f"{request.scope.get('root_path', '')}/api/v1/payments/{payment.id}"
            },
        )

    return await run_idempotent(
        runtime.db,
        session=session,
        scope=idempotency_scope(caller.principal, caller.cart_token),
        key=idempotency_key,
        fingerprint=request_fingerprint(request.method, request.url.path, body.model_dump()),
        operation=operation,
    )


async def optional_idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Optional: a retry with the same key and body replays the first response",
        ),
    ] = None,
) -> str | None:
    if idempotency_key is None:
        return None
    return await require_idempotency_key(idempotency_key)


@router.get(
    "/payments",
    response_model=PaymentPage,
    responses=problem_responses(
        401, 403, 422, s422="`invalid-cursor`, invalid input (an unknown status or provider)"
    ),
)
async def list_payments(
    session: Session,
    _staff: ShopReader,
    status_: Annotated[PaymentStatus | None, Query(alias="status")] = None,
    provider: ProviderName | None = None,
    order_id: uuid.UUID | None = None,
    created_after: Annotated[datetime | None, Query(description="Inclusive, ISO 8601")] = None,
    created_before: Annotated[datetime | None, Query(description="Exclusive, ISO 8601")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> PaymentPage:
    """Payments newest first, for staff: `?status=needs_review` is the review queue."""
    payments, next_cursor = await review.list_payments(
        session,
        filters=review.PaymentFilter(
            status=status_,
            provider=provider,
            order_id=order_id,
            created_after=created_after,
            created_before=created_before,
        ),
        limit=limit,
        cursor=cursor,
    )
    return PaymentPage(items=[PaymentOut.of(each) for each in payments], next_cursor=next_cursor)


@router.post(
    "/payments/{payment_id}/resolve",
    response_model=PaymentOut,
    responses=problem_responses(
        400,
        401,
        403,
        404,
        409,
        422,
        502,
        s400="`invalid-idempotency-key`",
        s404="`payment-not-found`",
        s409="`payment-not-in-review` (extension `resolved_with` when another decision took it "
        "out of review), `reported-currency-differs` (accept), `reported-amount-unknown` "
        "(refund), `provider-unavailable`, `idempotency-key-in-progress`",
        s422=_IDEMPOTENCY_422,
        s502="`provider-error`: the provider refused the refund; the payment stays in review",
    ),
)
async def resolve_payment(
    payment_id: uuid.UUID,
    body: ResolveRequest,
    request: Request,
    session: Session,
    runtime: AppRuntime,
    principal: PaymentsRefunder,
    idempotency_key: Annotated[str | None, Depends(optional_idempotency_key)],
) -> Response:
    """Decide a payment in `needs_review`: `accept` makes it succeed for the amount the provider
    reported and the order paid; `refund` has the provider refund that amount. Repeating the
    same decision answers the same; a different one after it is 409. Every decision is kept."""

    async def operation(_claim: IdempotencyClaim | None = None) -> Response:
        payment = await review.resolve_payment(
            session,
            payment_id=payment_id,
            action=body.action,
            actor_id=principal.user_id,
            settings=runtime.settings,
            note=body.note,
            reason=body.reason,
        )
        return JSONResponse(PaymentOut.of(payment).model_dump(mode="json"))

    if idempotency_key is None:
        return await operation()
    return await run_idempotent(
        runtime.db,
        session=session,
        scope=idempotency_scope(principal),
        key=idempotency_key,
        fingerprint=request_fingerprint(request.method, request.url.path, body.model_dump()),
        operation=operation,
    )


@router.get(
    "/payments/{payment_id}",
    response_model=PaymentOut,
    responses=problem_responses(
        401,
        404,
        422,
        s401=_NO_CALLER_401,
        s404="`payment-not-found` (or not yours)",
    ),
)
async def get_payment(payment_id: uuid.UUID, session: Session, caller: KnownCaller) -> PaymentOut:
    """A payment of one of the caller's orders (staff: any; a guest: the orders of its
    `X-Cart-Token`)."""
    payment = await service.get_payment(session, payment_id=payment_id, caller=caller)
    return PaymentOut.of(payment)


@router.post(
    "/payments/{payment_id}/refunds",
    status_code=status.HTTP_201_CREATED,
    response_model=RefundOut,
    responses=problem_responses(
        400,
        401,
        403,
        404,
        409,
        422,
        502,
        s400=_IDEMPOTENCY_400,
        s404="`payment-not-found`",
        s409="`refund-exceeds-captured`, `payment-not-refundable`, `idempotency-key-in-progress`",
        s422=_IDEMPOTENCY_422,
        s502="`provider-error`: the provider refused the refund; nothing was refunded",
    ),
)
async def refund_payment(
    payment_id: uuid.UUID,
    body: RefundRequest,
    request: Request,
    session: Session,
    runtime: AppRuntime,
    principal: PaymentsRefunder,
    idempotency_key: IdempotencyKeyHeader,
) -> Response:
    """Refund part or (by default) the rest of a payment, through its provider (staff)."""

    async def operation(_claim: IdempotencyClaim) -> Response:
        refund = await service.refund_payment(
            session,
            payment_id=payment_id,
            amount=body.amount,
            settings=runtime.settings,
            reason=body.reason or "requested",
        )
        return JSONResponse(
            RefundOut.of(refund).model_dump(mode="json"), status_code=status.HTTP_201_CREATED
        )

    return await run_idempotent(
        runtime.db,
        session=session,
        scope=idempotency_scope(principal),
        key=idempotency_key,
        fingerprint=request_fingerprint(request.method, request.url.path, body.model_dump()),
        operation=operation,
    )


@router.post(
    "/payments/webhooks/{provider}",
    responses={
        200: {"description": "Accepted, or already seen (provider's own format)"},
        204: {"description": "Accepted (WeChat Pay)"},
        **problem_responses(
            400,
            404,
            s400="`invalid-signature` (sandbox) or the provider's own rejection format",
            s404="No such provider configured",
        ),
    },
)
async def receive_webhook(provider: str, request: Request, runtime: AppRuntime) -> Response:
    """Where providers deliver callbacks. Verified before anything else; answered in the
    provider's format; applied at most once; every delivery kept for audit."""
    body = await request.body()
    return await callbacks.receive_callback(
        runtime.db,
        settings=runtime.settings,
        provider_name=provider,
        headers=request.headers,
        body=body,
    )


@router.post(
    "/payments/{payment_id}/sandbox/{outcome}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=problem_responses(
        401,
        404,
        409,
        422,
        s401=_NO_CALLER_401,
        s404="`payment-not-found` (or not yours), `sandbox-disabled`",
        s409="`not-a-sandbox-payment`, `conflict` (the payment is no longer pending)",
    ),
)
async def sandbox_outcome(
    payment_id: uuid.UUID,
    outcome: Literal["succeed", "fail"],
    session: Session,
    runtime: AppRuntime,
    caller: KnownCaller,
    body: SandboxOutcomeRequest | None = None,
) -> dict[str, bool]:
    """Make the sandbox provider deliver a signed callback (plus `duplicates` copies) to our
    webhook, retrying until acknowledged, like a real provider after the buyer pays."""
    await sandbox.request_sandbox_outcome(
        session,
        payment_id=payment_id,
        caller=caller,
        outcome=outcome,
        duplicates=body.duplicates if body else 0,
        settings=runtime.settings,
    )
    return {"accepted": True}
