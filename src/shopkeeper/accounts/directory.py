"""Finding users by e-mail and changing them as an operator does: roles, password, deactivation.

Used by `shopkeeper users ...`. Each change is one unit of work. A password change or a
deactivation revokes the user's refresh tokens, so every session ends within one access-token
lifetime (`SHOPKEEPER_ACCESS_TOKEN_TTL_SECONDS`); a deactivated user can no longer sign in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from shopkeeper.accounts.models import RefreshToken, User, UserRole
from shopkeeper.accounts.roles import ROLES, unknown_roles
from shopkeeper.accounts.service import UnknownRole, UserNotFound, normalize_email
from shopkeeper.core.db import utcnow
from shopkeeper.core.errors import InvalidInput
from shopkeeper.core.hashing import hash_password_off_loop

MIN_PASSWORD_LENGTH = 8


class PasswordTooShort(InvalidInput):
    slug, title = "password-too-short", "Password too short"


@dataclass(frozen=True, slots=True)
class UserSummary:
    email: str
    roles: tuple[str, ...]
    is_active: bool
    created_at: datetime


async def list_users(
    session: AsyncSession, *, role: str | None = None, limit: int = 100
) -> list[UserSummary]:
    """Users by e-mail, with their roles (two statements); `role` keeps those holding it."""
    query = select(User).options(selectinload(User.role_rows)).order_by(User.email).limit(limit)
    if role is not None:
        _check_roles([role])
        query = query.where(User.id.in_(select(UserRole.user_id).where(UserRole.role == role)))
    users = await session.scalars(query)
    return [
        UserSummary(
            email=user.email,
            roles=tuple(sorted(row.role for row in user.role_rows)),
            is_active=user.is_active,
            created_at=user.created_at,
        )
        for user in users
    ]


async def grant_roles(session: AsyncSession, *, email: str, roles: Sequence[str]) -> list[str]:
    """Add roles (keeping the others); returns the user's roles now."""
    _check_roles(roles)
    user = await _user(session, email)
    held = set(await session.scalars(select(UserRole.role).where(UserRole.user_id == user.id)))
    new = sorted(set(roles) - held)
    if new:
        await session.execute(insert(UserRole), [{"user_id": user.id, "role": r} for r in new])
    user.is_staff = True
    await session.commit()
    return sorted(held | set(new))


async def revoke_roles(
    session: AsyncSession, *, email: str, roles: Sequence[str] = ()
) -> list[str]:
    """Remove the given roles, or every role when none is given; returns the roles left."""
    _check_roles(roles)
    user = await _user(session, email)
    removal = delete(UserRole).where(UserRole.user_id == user.id)
    if roles:
        removal = removal.where(UserRole.role.in_(list(roles)))
    await session.execute(removal)
    left = sorted(await session.scalars(select(UserRole.role).where(UserRole.user_id == user.id)))
    user.is_staff = bool(left)
    await session.commit()
    return left


async def set_password(session: AsyncSession, *, email: str, password: str) -> None:
    """A new password; every refresh token of the user stops working."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooShort(f"The password needs at least {MIN_PASSWORD_LENGTH} characters")
    password_hash = await hash_password_off_loop(password)
    user = await _user(session, email)
    user.password_hash = password_hash
    await _revoke_sessions(session, user)
    await session.commit()


async def deactivate_user(session: AsyncSession, *, email: str) -> bool:
    """The user can no longer sign in or refresh; False when already inactive."""
    user = await _user(session, email)
    if not user.is_active:
        return False
    user.is_active = False
    await _revoke_sessions(session, user)
    await session.commit()
    return True


async def _user(session: AsyncSession, email: str) -> User:
    user = await session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise UserNotFound(f"No user {normalize_email(email)}")
    return user


async def _revoke_sessions(session: AsyncSession, user: User) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _check_roles(roles: Sequence[str]) -> None:
    if unknown := unknown_roles(roles):
        raise UnknownRole(f"No such role: {', '.join(unknown)} (roles: {', '.join(sorted(ROLES))})")
