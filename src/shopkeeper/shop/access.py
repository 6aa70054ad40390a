"""Who calls the shop, and what they may do: the `Caller` of customer endpoints and the staff
permissions of the others, each declared once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from shopkeeper.accounts.permissions import OptionalUser, unverified_principal, user_permission
from shopkeeper.core.errors import Unauthorized
from shopkeeper.core.security import Principal

READ, WRITE, REFUND = "shop:read", "shop:write", "payments:refund"

ShopReader = Annotated[Principal, user_permission(READ)]
ShopWriter = Annotated[Principal, user_permission(WRITE)]
PaymentsRefunder = Annotated[Principal, user_permission(REFUND)]

CART_TOKEN_HEADER = "X-Cart-Token"  # noqa: S105  (a header name, not a secret)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who calls a customer endpoint: a signed-in user, a guest holding a cart's secret token,
    both (a user finishing a guest checkout), or neither. Ownership checks take this one value."""

    principal: Principal | None = None
    cart_token: str | None = None

    @property
    def user_id(self) -> uuid.UUID | None:
        return self.principal.user_id if self.principal is not None else None

    @property
    def is_anonymous(self) -> bool:
        return self.principal is None and not self.cart_token

    def can(self, permission: str) -> bool:
        return self.principal is not None and self.principal.can(permission)


CartToken = Annotated[
    str | None,
    Header(
        alias=CART_TOKEN_HEADER,
        max_length=128,
        description="The guest cart's secret, as returned by POST /carts without auth",
    ),
]


async def shop_caller(principal: OptionalUser, cart_token: CartToken = None) -> Caller:
    return Caller(principal=principal, cart_token=cart_token or None)


ShopCaller = Annotated[Caller, Depends(shop_caller)]


async def unverified_shop_caller(
    principal: Annotated[Principal | None, Depends(unverified_principal)],
    cart_token: CartToken = None,
) -> Caller:
    return Caller(principal=principal, cart_token=cart_token or None)


UnverifiedShopCaller = Annotated[Caller, Depends(unverified_shop_caller)]
"""`ShopCaller` whose signed-in user is not yet known to exist: the endpoint checks that itself
(`accounts.permissions.unverified_principal`)."""


async def known_caller(caller: ShopCaller) -> Caller:
    """A caller who is someone: signed in, or holding a guest cart's token."""
    if caller.is_anonymous:
        raise Unauthorized(f"Sign in, or send the guest cart's {CART_TOKEN_HEADER}")
    return caller


KnownCaller = Annotated[Caller, Depends(known_caller)]
