"""Who may do what in the shop: the staff permissions of its endpoints, named once."""

from __future__ import annotations

from typing import Annotated

from shopkeeper.accounts.permissions import user_permission
from shopkeeper.core.security import Principal

READ, WRITE, REFUND = "shop:read", "shop:write", "payments:refund"

ShopReader = Annotated[Principal, user_permission(READ)]
ShopWriter = Annotated[Principal, user_permission(WRITE)]
PaymentsRefunder = Annotated[Principal, user_permission(REFUND)]
