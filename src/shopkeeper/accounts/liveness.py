"""Is the user behind a still-valid access token still there, and what may they do now?

Access tokens are stateless, so without this a token outlived its user: a deleted account's
token answered 500 on `POST /carts` (the foreign key), and a deactivated or demoted user kept
what the token said until it expired. One indexed read per signed-in request settles it: a user
who no longer exists or is deactivated is a 401 on every endpoint.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.accounts.models import User, UserRole
from shopkeeper.accounts.roles import permissions_of
from shopkeeper.core.db import Database
from shopkeeper.core.security import InvalidToken


class AccountGone(InvalidToken):
    slug, title = "account-gone", "Account no longer active"


async def is_active_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(User.is_active).where(User.id == user_id)))


async def ensure_active_user(db: Database, user_id: uuid.UUID) -> None:
    """Raise 401 `account-gone` unless `user_id` is an existing, active user."""
    async with db.session() as session:
        if not await is_active_user(session, user_id):
            raise AccountGone(
                "The account this token was issued to no longer exists or is inactive"
            )


async def current_permissions(db: Database, user_id: uuid.UUID) -> frozenset[str] | None:
    """The user's permissions as the database says now; None if they are gone or inactive."""
    async with db.session() as session:
        if not await is_active_user(session, user_id):
            return None
        roles = await session.scalars(select(UserRole.role).where(UserRole.user_id == user_id))
        return permissions_of(roles)
