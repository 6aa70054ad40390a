"""Staff-only sign-in for the admin UI: a session cookie signed with `SHOPKEEPER_SECRET_KEY`."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import structlog
from sqladmin.authentication import AuthenticationBackend
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from shopkeeper.accounts.models import User
from shopkeeper.accounts.roles import permissions_of
from shopkeeper.accounts.service import normalize_email
from shopkeeper.core.errors import RateLimited
from shopkeeper.core.hashing import verify_password_off_loop
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Principal, hash_token
from shopkeeper.core.settings import Settings
from shopkeeper.shop.access import READ

if TYPE_CHECKING:
    from sqladmin import Admin

log = structlog.get_logger(__name__)

SESSION_COOKIE = "shopkeeper_admin"
SESSION_MAX_AGE_SECONDS = 8 * 3600


def password_fingerprint(user: User) -> str:
    """Changes whenever the password does, so a password change ends every admin session."""
    return hash_token(user.password_hash)[:16]


class StaffAuthentication(AuthenticationBackend):
    """Only active staff users get in. The session holds the user id and a fingerprint of the
    password hash; every request re-reads the user, so revoking staff rights or deactivating
    the account locks the admin out at once rather than when the cookie expires."""

    def __init__(self, settings: Settings, runtime_of: Any) -> None:
        assert settings.secret_key is not None
        super().__init__(
            secret_key=settings.secret_key.get_secret_value(),
            session_cookie=SESSION_COOKIE,
            max_age=SESSION_MAX_AGE_SECONDS,
            path="/admin",
            # sqladmin's forms carry no CSRF token; a strict same-site cookie is what stops
            # another site from posting them with the staff user's session.
            same_site="strict",
            https_only=settings.base_url.startswith("https://"),
        )
        self.settings = settings
        self._runtime_of = runtime_of
        self.admin: Admin | None = None

    def runtime(self) -> Runtime:
        runtime: Runtime = self._runtime_of()
        return runtime

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        # The form's field is "email"; "username" is what sqladmin's own form (and older
        # scripts) send.
        email = normalize_email(str(form.get("email") or form.get("username") or ""))
        password = str(form.get("password") or "")
        address = request.client.host if request.client else "unknown"
        runtime = self.runtime()
        limits = (
            (self.settings.login_attempts_per_account, "login-account", email),
            (self.settings.login_attempts_per_address, "login-address", address),
        )
        try:
            for limit, *key in limits:
                await runtime.ratelimiter.ensure_not_exceeded(limit, *key)
        except RateLimited as exc:
            return await self._refuse(request, "Too many attempts; try again later.", 429, exc)

        async with runtime.db.session() as session:
            user = await session.scalar(select(User).where(User.email == email))
        # Same argon2 cost whether or not the account exists (see verify_password).
        valid = await verify_password_off_loop(
            password, user.password_hash if user is not None else None
        )
        if user is None or not valid or not user.is_active or not may_use_admin(user):
            # Failures share the API login's budgets, so the admin form is no side door for
            # guessing passwords.
            for limit, *key in limits:
                await runtime.ratelimiter.record(limit, *key)
            log.warning("admin_login_refused", email=email, client=address)
            return False
        request.session.clear()
        request.session.update({"user_id": str(user.id), "auth": password_fingerprint(user)})
        log.info("admin_login", user_id=str(user.id), client=address)
        return True

    async def logout(self, request: Request) -> Response | bool:
        request.session.clear()
        return False

    async def authenticate(self, request: Request) -> Response | bool:
        raw_id = request.session.get("user_id")
        if not raw_id:
            return False
        try:
            user_id = uuid.UUID(str(raw_id))
        except ValueError:
            request.session.clear()
            return False
        async with self.runtime().db.session() as session:
            user = await session.get(User, user_id)
        if (
            user is None
            or not user.is_active
            or not may_use_admin(user)
            or request.session.get("auth") != password_fingerprint(user)
        ):
            request.session.clear()
            return False
        # What this user may do, for the pages to decide what to show and allow.
        request.state.staff = Principal(user_id=user.id, permissions=permissions_of(user.roles))
        request.state.staff_name = user.full_name or user.email
        return True

    async def _refuse(
        self, request: Request, message: str, status: int, exc: RateLimited
    ) -> Response | bool:
        if self.admin is None:
            return False
        response = await self.admin.templates.TemplateResponse(
            request, "sqladmin/login.html", {"error": message}, status_code=status
        )
        response.headers.update(exc.headers)
        return response


def may_use_admin(user: User) -> bool:
    """The back office is the shop's: its staff need `shop:read` from one of their roles."""
    return READ in permissions_of(user.roles)
