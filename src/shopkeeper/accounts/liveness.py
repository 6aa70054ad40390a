"""Is the user behind a still-valid access token still there, and what may they do now?

Access tokens are stateless, so without this a token outlived its user: a deleted account's
token answered 500 on `POST /carts` (the foreign key). Every signed-in request checks that its
user exists (401 `account-gone` otherwise); a user seen to exist is remembered by the process
for `_SEEN_FOR` seconds, so the hot paths keep their statement budgets (checkout: four). A
deactivated account keeps its own answers (`user-not-found` where the API says so). Real-time
sockets ask `current_permissions`, which also refuses deactivated users.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import ScalarSelect, Uuid, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.accounts.models import User, UserRole
from shopkeeper.accounts.roles import permissions_of
from shopkeeper.core.db import Database, table_of
from shopkeeper.core.security import InvalidToken


class AccountGone(InvalidToken):
    slug, title = "account-gone", "Account no longer exists"


_SEEN_FOR = 10.0
_SEEN_MAX = 50_000
_seen: dict[uuid.UUID, float] = {}
# Built once: a statement built per call pays SQLAlchemy's cache-key walk on every request.
_EXISTS = select(User.id).where(User.id == bindparam("user_id", type_=Uuid()))


async def ensure_active_user(db: Database, user_id: uuid.UUID) -> None:
    """Raise 401 `account-gone` unless `user_id` is an existing user."""
    now = time.monotonic()
    if _seen.get(user_id, 0.0) > now:
        return
    if db.is_sqlite:
        async with db.session() as session:
            exists = await session.scalar(_EXISTS, {"user_id": user_id})
    else:
        # One statement outside a transaction: no BEGIN and ROLLBACK round trips around it (a
        # checkout by a buyer this process has not seen lately paid three round trips for it).
        async with db.autocommit.connect() as connection:
            exists = (await connection.execute(_EXISTS, {"user_id": user_id})).scalar()
    if exists is None:
        _seen.pop(user_id, None)
        raise AccountGone("The account this token was issued to no longer exists")
    remember(user_id)


def account_column(user_id: ColumnElement[uuid.UUID]) -> ScalarSelect[uuid.UUID]:
    """The user's id if the account exists (NULL if not), as a scalar subquery: an endpoint that
    skips `ensure_active_user` reads it with its own first statement instead (checkout)."""
    users = table_of(User)
    return select(users.c.id).where(users.c.id == user_id).scalar_subquery()


def remember(user_id: uuid.UUID) -> None:
    """`user_id` was just seen to exist by a statement of the request's own (`account_column`)."""
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen[user_id] = time.monotonic() + _SEEN_FOR


def forget(user_id: uuid.UUID) -> None:
    """Check `user_id` again on its next request (call after deleting the account)."""
    _seen.pop(user_id, None)


async def is_active_user(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(User.is_active).where(User.id == user_id)))


async def current_permissions(db: Database, user_id: uuid.UUID) -> frozenset[str] | None:
    """The user's permissions as the database says now; None if they are gone or inactive."""
    async with db.session() as session:
        if not await is_active_user(session, user_id):
            return None
        roles = await session.scalars(select(UserRole.role).where(UserRole.user_id == user_id))
        return permissions_of(roles)
