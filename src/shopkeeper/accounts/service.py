"""Registration, login, token rotation and logout. Each use case is one unit of work."""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import ScalarSelect, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from shopkeeper.accounts.events import UserRegistered
from shopkeeper.accounts.models import ApiKey, RefreshToken, User, UserRole
from shopkeeper.accounts.roles import permissions_of, unknown_roles, unknown_scopes
from shopkeeper.accounts.schemas import TokenPair
from shopkeeper.core.db import Database, affected_rows, table_of, utcnow
from shopkeeper.core.errors import Conflict, InvalidInput, NotFound, Unauthorized
from shopkeeper.core.hashing import hash_password_off_loop, verify_password_off_loop
from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.security import (
    Actor,
    create_access_token,
    hash_token,
    new_opaque_token,
)
from shopkeeper.core.settings import Settings


class EmailTaken(Conflict):
    slug, title = "email-taken", "E-mail already registered"


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Invalid e-mail or password"


class InvalidRefreshToken(Unauthorized):
    slug, title = "invalid-refresh-token", "Invalid refresh token"


class RefreshTokenReused(Unauthorized):
    slug, title = "refresh-token-reused", "Refresh token already used"


class UserNotFound(NotFound):
    slug, title = "user-not-found", "User not found"


class UnknownRole(InvalidInput):
    slug, title = "unknown-role", "Unknown role"


class UnknownScope(InvalidInput):
    slug, title = "unknown-scope", "Unknown scope"


class ApiKeyNotFound(NotFound):
    slug, title = "api-key-not-found", "API key not found"


class InvalidApiKey(Unauthorized):
    slug, title = "invalid-api-key", "Invalid API key"


class InvalidKeysCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


API_KEY_PREFIX = "sk_"


def normalize_email(email: str) -> str:
    return email.strip().lower()


async def register_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    full_name: str | None = None,
    roles: tuple[str, ...] = (),
) -> User:
    email = normalize_email(email)
    # Hashed before the session takes a connection: held through the hash, 20 registrations
    # emptied the pool and every other request queued behind them (bench/registrations.py).
    password_hash = await hash_password_off_loop(password)
    existing = await session.scalar(select(User.id).where(User.email == email))
    if existing is not None:
        raise EmailTaken(f"{email} is already registered")
    if unknown := unknown_roles(roles):
        raise UnknownRole(f"No such role: {', '.join(unknown)}")
    user = User(email=email, password_hash=password_hash, full_name=full_name)
    user.is_staff = bool(roles)
    user.role_rows = [UserRole(role=role) for role in sorted(set(roles))]
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:
        # Two registrations raced past the check above; the unique index decided.
        raise EmailTaken(f"{email} is already registered") from exc
    record_event(session, UserRegistered(user_id=user.id, email=user.email, full_name=full_name))
    await session.commit()
    return user


async def ensure_staff_user(session: AsyncSession, *, email: str, password: str) -> bool:
    """Create the bootstrap admin if absent. Returns whether a user was created."""
    email = normalize_email(email)
    if await session.scalar(select(User.id).where(User.email == email)) is not None:
        return False
    try:
        await register_user(session, email=email, password=password, roles=("admin",))
    except EmailTaken:
        return False  # another process created it at the same start-up
    return True


async def get_user(session: AsyncSession, *, user_id: uuid.UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        raise UserNotFound()
    return user


def active_email_of(user_id: uuid.UUID | ColumnElement[uuid.UUID]) -> ScalarSelect[str]:
    """The e-mail of an active user as a scalar subquery (NULL for none), for a statement
    that reads it alongside its own rows (checkout)."""
    users = table_of(User)
    return (
        select(users.c.email)
        .where(users.c.id == user_id, users.c.is_active.is_(True))
        .scalar_subquery()
    )


async def authenticate(
    session: AsyncSession,
    *,
    settings: Settings,
    ratelimiter: RateLimiter,
    email: str,
    password: str,
    client_address: str,
) -> tuple[User, TokenPair]:
    """Check a password and issue a token pair, limiting failures per account and per address."""
    email = normalize_email(email)
    account_key = ("login-account", email)
    address_key = ("login-address", client_address)
    await ratelimiter.ensure_not_exceeded(settings.login_attempts_per_account, *account_key)
    await ratelimiter.ensure_not_exceeded(settings.login_attempts_per_address, *address_key)

    user = await session.scalar(select(User).where(User.email == email))
    # verify_password spends the same argon2 time whether or not the account exists.
    valid = await verify_password_off_loop(
        password, user.password_hash if user is not None else None
    )
    if user is None or not valid or not user.is_active:
        await ratelimiter.record(settings.login_attempts_per_account, *account_key)
        await ratelimiter.record(settings.login_attempts_per_address, *address_key)
        raise InvalidCredentials()

    await ratelimiter.clear(settings.login_attempts_per_account, *account_key)
    pair = _issue_tokens(session, settings=settings, user=user, family_id=uuid.uuid4())
    await session.commit()
    return user, pair


async def rotate_refresh_token(
    session: AsyncSession, *, settings: Settings, refresh_token: str
) -> TokenPair:
    """Spend a refresh token for a new pair. A spent token presented again revokes its family."""
    now = utcnow()
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
    )
    if token is None or token.revoked_at is not None or token.expires_at <= now:
        raise InvalidRefreshToken()
    # Conditional update: of two concurrent refreshes with the same token, only one spends it.
    spent = await session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.id == token.id,
            RefreshToken.spent_at.is_(None),
            RefreshToken.revoked_at.is_(None),
        )
        .values(spent_at=now)
    )
    if affected_rows(spent) != 1:
        await _revoke_family(session, token.family_id)
        await session.commit()
        raise RefreshTokenReused("This refresh token was already used; sign in again")
    user = await session.get(User, token.user_id)
    if user is None or not user.is_active:
        raise InvalidRefreshToken()
    pair = _issue_tokens(session, settings=settings, user=user, family_id=token.family_id)
    await session.commit()
    return pair


async def logout(session: AsyncSession, *, refresh_token: str) -> None:
    token = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_token(refresh_token))
    )
    if token is not None:
        await _revoke_family(session, token.family_id)
        await session.commit()


async def _revoke_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def _issue_tokens(
    session: AsyncSession, *, settings: Settings, user: User, family_id: uuid.UUID
) -> TokenPair:
    raw = new_opaque_token()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family_id,
            token_hash=hash_token(raw),
            expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
    )
    access = create_access_token(
        settings=settings, user_id=user.id, permissions=permissions_of(user.roles)
    )
    return TokenPair(
        access_token=access, refresh_token=raw, expires_in=settings.access_token_ttl_seconds
    )


async def set_user_roles(session: AsyncSession, *, user_id: uuid.UUID, roles: list[str]) -> User:
    """Replace a user's roles. Tokens already issued keep their permissions until their next
    refresh (at most one access-token lifetime)."""
    if unknown := unknown_roles(roles):
        raise UnknownRole(f"No such role: {', '.join(unknown)}")
    user = await get_user(session, user_id=user_id)
    wanted = sorted(set(roles))
    await session.execute(delete(UserRole).where(UserRole.user_id == user_id))
    if wanted:
        await session.execute(
            insert(UserRole), [{"user_id": user_id, "role": role} for role in wanted]
        )
    user.is_staff = bool(wanted)
    await session.commit()
    await session.refresh(user, ["role_rows"])
    return user


async def create_api_key(
    session: AsyncSession, *, name: str, scopes: list[str], tenant: str | None = None
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which exists only in this return value."""
    if unknown := unknown_scopes(scopes):
        raise UnknownScope(f"No such scope: {', '.join(unknown)}")
    plaintext = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name,
        scopes=sorted(set(scopes)),
        tenant=tenant or "default",
        key_hash=hash_token(plaintext),
    )
    session.add(key)
    await session.commit()
    return key, plaintext


async def list_api_keys(
    session: AsyncSession, *, limit: int, cursor: str | None = None
) -> tuple[list[ApiKey], str | None]:
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None)).order_by(ApiKey.id.desc())
    if cursor is not None:
        query = query.where(ApiKey.id < _decode_cursor(cursor))
    keys = list((await session.scalars(query.limit(limit + 1))).all())
    next_cursor = _encode_cursor(keys[limit - 1].id) if len(keys) > limit else None
    return keys[:limit], next_cursor


async def revoke_api_key(session: AsyncSession, *, key_id: uuid.UUID) -> None:
    """Every process looks keys up per request, so a revoked key fails on its next use."""
    revoked = await session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if affected_rows(revoked) != 1:
        raise ApiKeyNotFound()
    await session.commit()


async def actor_for_key(session: AsyncSession, *, presented: str) -> Actor:
    """The actor a presented key stands for. Elasticsearch clients send `base64(id:key)`; the
    part after the colon is then our key."""
    key = await session.scalar(
        select(ApiKey).where(
            ApiKey.key_hash.in_([hash_token(candidate) for candidate in _key_forms(presented)]),
            ApiKey.revoked_at.is_(None),
        )
    )
    if key is None:
        raise InvalidApiKey()
    return Actor(user_id=None, key_id=key.id, permissions=frozenset(key.scopes), tenant=key.tenant)


# Built once: a statement built per call pays SQLAlchemy's cache-key walk on every request.
_LIVE_KEY = select(ApiKey.id, ApiKey.scopes, ApiKey.tenant).where(
    ApiKey.key_hash.in_(bindparam("hashes", expanding=True)), ApiKey.revoked_at.is_(None)
)


async def actor_for_presented_key(db: Database, presented: str) -> Actor:
    """`actor_for_key` as one read statement outside a transaction (`Database.read_first`):
    every ingest request looks its key up, and concurrent lookups must not queue."""
    hashes = [hash_token(candidate) for candidate in _key_forms(presented)]
    row = await db.read_first(_LIVE_KEY, {"hashes": hashes})
    if row is None:
        raise InvalidApiKey()
    return Actor(user_id=None, key_id=row.id, permissions=frozenset(row.scopes), tenant=row.tenant)


def _key_forms(presented: str) -> list[str]:
    forms = [presented]
    if not presented.startswith(API_KEY_PREFIX):
        try:
            decoded = base64.b64decode(presented, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return forms
        forms.append(decoded.rpartition(":")[2])
    return forms


def _encode_cursor(key_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(key_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidKeysCursor("The cursor is not one this endpoint returned") from exc
