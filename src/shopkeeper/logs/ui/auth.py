"""Signing in to the logs UI: the shop's accounts, a form and a signed session cookie.

The cookie holds the user id and a fingerprint of the password hash, signed with
`SHOPKEEPER_SECRET_KEY`; every request reads the user again, so a deactivated account, a lost
`logs:read` or a changed password ends the session at once rather than when the cookie
expires. Failed attempts spend the API login's budgets (per account, per address)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import structlog
from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from shopkeeper.accounts.models import User
from shopkeeper.accounts.roles import permissions_of
from shopkeeper.accounts.service import normalize_email
from shopkeeper.core.hashing import verify_password_off_loop
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import create_access_token, hash_token
from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)

COOKIE = "shopkeeper_logs"
COOKIE_PATH = "/logs"
MAX_AGE_SECONDS = 8 * 3600
READ = "logs:read"


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, htmx requests are told to."""


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: uuid.UUID
    email: str
    permissions: frozenset[str]
    tenant: str = "default"

    def access_token(self, settings: Settings) -> str:
        """A short-lived access token for the browser's own API calls (the tail WebSocket)."""
        return create_access_token(
            settings=settings, user_id=self.user_id, permissions=self.permissions
        )


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    assert settings.secret_key is not None
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="logs-ui-session")


def _fingerprint(user: User) -> str:
    return hash_token(user.password_hash)[:16]


def may_read_logs(user: User) -> bool:
    return user.is_active and READ in permissions_of(user.roles)


async def sign_in(
    runtime: Runtime, *, email: str, password: str, address: str
) -> tuple[User, str] | None:
    """The user and their session cookie's value, or None (wrong password, no `logs:read`).
    Raises `RateLimited` past the login budgets."""
    settings = runtime.settings
    email = normalize_email(email)
    limits = (
        (settings.login_attempts_per_account, "login-account", email),
        (settings.login_attempts_per_address, "login-address", address),
    )
    for limit, *key in limits:
        await runtime.ratelimiter.ensure_not_exceeded(limit, *key)
    async with runtime.db.session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        # Same argon2 cost whether or not the account exists.
        valid = await verify_password_off_loop(
            password, user.password_hash if user is not None else None
        )
        if user is None or not valid or not may_read_logs(user):
            for limit, *key in limits:
                await runtime.ratelimiter.record(limit, *key)
            log.warning("logs_ui_login_refused", email=email, client=address)
            return None
        cookie = _serializer(settings).dumps({"u": str(user.id), "a": _fingerprint(user)})
    log.info("logs_ui_login", user_id=str(user.id), client=address)
    return user, cookie


async def viewer_of(request: Request) -> Viewer:
    """The signed-in viewer of this request, or `SignInRequired`."""
    settings: Settings = request.app.state.settings
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise SignInRequired()
    try:
        claims = _serializer(settings).loads(raw, max_age=MAX_AGE_SECONDS)
        user_id = uuid.UUID(str(claims["u"]))
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise SignInRequired() from exc
    runtime: Runtime = request.app.state.runtime
    async with runtime.db.session() as session:
        user = await session.get(User, user_id)
        if user is None or not may_read_logs(user) or claims.get("a") != _fingerprint(user):
            raise SignInRequired()
        return Viewer(user_id=user.id, email=user.email, permissions=permissions_of(user.roles))


CurrentViewer = Annotated[Viewer, Depends(viewer_of)]
