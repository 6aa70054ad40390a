"""Password hashing, access tokens, and the `CurrentUser` / `StaffUser` dependencies."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from shopkeeper.core.db import utcnow
from shopkeeper.core.errors import Forbidden, Unauthorized
from shopkeeper.core.settings import Settings

JWT_ALGORITHM = "HS256"

password_hasher = PasswordHash((Argon2Hasher(),))

# Verified against when the e-mail is unknown, so a login for a missing account costs the same
# time as one for a real account and does not reveal which e-mails are registered.
_DUMMY_HASH = password_hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return password_hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        password_hasher.verify(password, _DUMMY_HASH)
        return False
    return password_hasher.verify(password, password_hash)


def hash_token(token: str) -> str:
    """Refresh tokens and similar bearer secrets are stored only as their SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as the access token says."""

    user_id: uuid.UUID
    is_staff: bool


def create_access_token(*, settings: Settings, user_id: uuid.UUID, is_staff: bool) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "staff": is_staff,
        "iat": now,
        "exp": now + timedelta(seconds=settings.access_token_ttl_seconds),
        "iss": settings.jwt_issuer,
        "jti": secrets.token_hex(8),
        "typ": "access",
    }
    return jwt.encode(claims, _secret(settings), algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> Principal:
    """Verify signature, expiry and issuer; only HS256 is accepted, so `alg: none` is refused."""
    try:
        claims = jwt.decode(
            token,
            _secret(settings),
            algorithms=[JWT_ALGORITHM],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "iss"]},
        )
        if claims.get("typ") != "access":
            raise jwt.InvalidTokenError("not an access token")
        return Principal(user_id=uuid.UUID(claims["sub"]), is_staff=bool(claims.get("staff")))
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The access token has expired") from exc
    except (jwt.InvalidTokenError, ValueError, KeyError) as exc:
        raise InvalidToken() from exc


def _secret(settings: Settings) -> str:
    assert settings.secret_key is not None
    return settings.secret_key.get_secret_value()


class InvalidToken(Unauthorized):
    slug, title = "invalid-token", "Invalid access token"


class StaffOnly(Forbidden):
    slug, title = "staff-only", "Staff only"


_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(settings_of)]


async def optional_principal(
    settings: AppSettings, token: Annotated[str | None, Depends(_bearer)]
) -> Principal | None:
    if token is None:
        return None
    return decode_access_token(token, settings)


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthorized("Send `Authorization: Bearer <access_token>`")
    return principal


async def staff_principal(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not principal.is_staff:
        raise StaffOnly("This endpoint is for staff")
    return principal


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
StaffUser = Annotated[Principal, Depends(staff_principal)]
