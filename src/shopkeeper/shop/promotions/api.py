"""Vouchers (shop staff). Applying one to a cart is the carts API's."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from shopkeeper.accounts.permissions import AppSettings
from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.shop.access import ShopReader, ShopWriter
from shopkeeper.shop.promotions import service
from shopkeeper.shop.promotions.schemas import VoucherIn, VoucherOut, VoucherPatch

router = APIRouter(tags=["promotions"])

_INVALID = "`validation-error`; `invalid-voucher` (a percentage over 10000, ends before starts, "
_INVALID += "an unknown category, another currency)"


@router.post(
    "/vouchers",
    status_code=status.HTTP_201_CREATED,
    response_model=VoucherOut,
    responses=problem_responses(401, 403, 409, 422, s409="`voucher-code-taken`", s422=_INVALID),
)
async def create_voucher(
    body: VoucherIn, session: Session, settings: AppSettings, _staff: ShopWriter
) -> VoucherOut:
    view = await service.create_voucher(session, values=body.values(settings.currency))
    return VoucherOut.of(view, settings.currency)


@router.get("/vouchers", response_model=list[VoucherOut], responses=problem_responses(401, 403))
async def list_vouchers(
    session: Session, settings: AppSettings, _staff: ShopReader
) -> list[VoucherOut]:
    return [VoucherOut.of(view, settings.currency) for view in await service.list_vouchers(session)]


@router.get(
    "/vouchers/{voucher_id}",
    response_model=VoucherOut,
    responses=problem_responses(401, 403, 404, 422, s404="`voucher-not-found`"),
)
async def get_voucher(
    voucher_id: uuid.UUID, session: Session, settings: AppSettings, _staff: ShopReader
) -> VoucherOut:
    view = await service.get_voucher(session, voucher_id=voucher_id)
    return VoucherOut.of(view, settings.currency)


@router.patch(
    "/vouchers/{voucher_id}",
    response_model=VoucherOut,
    responses=problem_responses(
        401,
        403,
        404,
        409,
        422,
        s404="`voucher-not-found`",
        s409="`voucher-code-taken`",
        s422=_INVALID,
    ),
)
async def update_voucher(
    voucher_id: uuid.UUID,
    body: VoucherPatch,
    session: Session,
    settings: AppSettings,
    _staff: ShopWriter,
) -> VoucherOut:
    view = await service.update_voucher(
        session, voucher_id=voucher_id, changes=body.changes(settings.currency)
    )
    return VoucherOut.of(view, settings.currency)
