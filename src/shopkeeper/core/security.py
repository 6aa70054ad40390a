"""Password hashing and access tokens; the request dependencies built on them are in
`shopkeeper.accounts.permissions`."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from shopkeeper.core.db import utcnow
from shopkeeper.core.errors import Unauthorized
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


ALL_PERMISSIONS = "*"
"""Held by access tokens issued before roles existed to staff users (who were all admins)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, as the access token says: who, and what their roles allowed when the
    token was issued (a role change reaches the token at its next refresh)."""

    user_id: uuid.UUID
    permissions: frozenset[str] = frozenset()

    def can(self, permission: str) -> bool:
        return permission in self.permissions or ALL_PERMISSIONS in self.permissions

    @property
    def is_staff(self) -> bool:
        return bool(self.permissions)


@dataclass(frozen=True, slots=True)
class Actor:
    """Whoever calls an endpoint that names a permission: a user (by access token) or a machine
    (by API key). A key's scopes are all it can do; its tenant is the only one it sees."""

    user_id: uuid.UUID | None
    key_id: uuid.UUID | None
    permissions: frozenset[str]
    tenant: str = "default"

    def can(self, permission: str) -> bool:
        return permission in self.permissions or ALL_PERMISSIONS in self.permissions


def create_access_token(
    *, settings: Settings, user_id: uuid.UUID, permissions: frozenset[str] | set[str]
) -> str:
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "staff": bool(permissions),
        "perm": sorted(permissions),
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
        return Principal(user_id=uuid.UUID(claims["sub"]), permissions=_permissions_of(claims))
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("The access token has expired") from exc
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken() from exc


def _permissions_of(claims: dict[str, Any]) -> frozenset[str]:
    if "perm" in claims:
        return frozenset(str(permission) for permission in claims["perm"])
    # Tokens issued before roles (at most one access-token lifetime old) keep working: every
    # staff user of that time became an `admin`.
    return frozenset({ALL_PERMISSIONS}) if claims.get("staff") else frozenset()


def _secret(settings: Settings) -> str:
    assert settings.secret_key is not None
    return settings.secret_key.get_secret_value()


class InvalidToken(Unauthorized):
    slug, title = "invalid-token", "Invalid access token"
