"""Signing in to a server-rendered UI (`/logs`, `/crawl`): the shop's accounts, a form and a
signed session cookie, one `WebSession` per UI.

The cookie holds the user id and a fingerprint of the password hash, signed with
`SHOPKEEPER_SECRET_KEY` (and the UI's own salt, so one UI's cookie is not another's); every
request reads the user again, so a deactivated account, a lost permission or a changed password
ends the session at once rather than when the cookie expires. Failed attempts spend the API
login's budgets (per account, per address).

A UI gives its sign-in page's template through `render`; the routes (`GET/POST <path>/login`,
`POST <path>/logout`) and the redirect to the form are the same for every UI."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import structlog
from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from shopkeeper.accounts.models import User
from shopkeeper.accounts.roles import permissions_of
from shopkeeper.accounts.service import normalize_email
from shopkeeper.core.errors import RateLimited
from shopkeeper.core.hashing import verify_password_off_loop
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import create_access_token, hash_token
from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)

Render = Callable[[Request, dict[str, Any], int], Response]
"""(request, context, status) -> the UI's sign-in page; context has `next`, `email`, `error`."""


class SignInRequired(Exception):
    """No valid session: pages redirect to the sign-in form, htmx requests are told to."""

    def __init__(self, web: WebSession) -> None:
        super().__init__(web.path)
        self.web = web


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: uuid.UUID
    email: str
    permissions: frozenset[str]
    tenant: str = "default"

    def can(self, permission: str) -> bool:
        return permission in self.permissions

    def access_token(self, settings: Settings) -> str:
        """A short-lived access token for the browser's own API calls (a WebSocket)."""
        return create_access_token(
            settings=settings, user_id=self.user_id, permissions=self.permissions
        )


@dataclass(frozen=True, slots=True)
class WebSession:
    """One UI's session: its cookie, the path it lives under and the permission it needs."""

    cookie_name: str
    path: str
    permission: str
    salt: str
    max_age_seconds: int = 8 * 3600
    denied: str = "Wrong e-mail or password, or this account may not use this page."

    def dependency(self) -> Any:
        """`Annotated[Viewer, web.dependency()]`: the signed-in viewer, or the sign-in form."""
        return Depends(self.viewer_of)

    @property
    def login_path(self) -> str:
        return f"{self.path}/login"

    def _serializer(self, settings: Settings) -> URLSafeTimedSerializer:
        assert settings.secret_key is not None
        return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=self.salt)

    def may_use(self, user: User) -> bool:
        return user.is_active and self.permission in permissions_of(user.roles)

    async def sign_in(
        self, runtime: Runtime, *, email: str, password: str, address: str
    ) -> tuple[User, str] | None:
        """The user and their session cookie's value, or None (wrong password, no permission).
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
            if user is None or not valid or not self.may_use(user):
                for limit, *key in limits:
                    await runtime.ratelimiter.record(limit, *key)
                log.warning("web_login_refused", ui=self.path, email=email, client=address)
                return None
            cookie = self._serializer(settings).dumps({"u": str(user.id), "a": _fingerprint(user)})
        log.info("web_login", ui=self.path, user_id=str(user.id), client=address)
        return user, cookie

    async def viewer_of(self, request: Request) -> Viewer:
        """The signed-in viewer of this request, or `SignInRequired`."""
        settings: Settings = request.app.state.settings
        raw = request.cookies.get(self.cookie_name)
        if not raw:
            raise SignInRequired(self)
        try:
            claims = self._serializer(settings).loads(raw, max_age=self.max_age_seconds)
            user_id = uuid.UUID(str(claims["u"]))
        except (BadSignature, KeyError, TypeError, ValueError) as exc:
            raise SignInRequired(self) from exc
        runtime: Runtime = request.app.state.runtime
        async with runtime.db.session() as session:
            user = await session.get(User, user_id)
            if user is None or not self.may_use(user) or claims.get("a") != _fingerprint(user):
                raise SignInRequired(self)
            return Viewer(user_id=user.id, email=user.email, permissions=permissions_of(user.roles))

    def safe_next(self, target: str) -> str:
        """Only this UI's own pages: never an open redirect."""
        return target if target.startswith(self.path) and "//" not in target else self.path

    def routes(self, render: Render) -> APIRouter:
        """`GET/POST <path>/login` (the form) and `POST <path>/logout`."""
        router = APIRouter(prefix=self.path, include_in_schema=False)

        @router.get("/login", response_class=HTMLResponse)
        async def login_form(request: Request, next: str = self.path) -> Response:
            return render(request, {"next": self.safe_next(next), "error": None}, 200)

        @router.post("/login", response_class=HTMLResponse)
        async def login(
            request: Request,
            email: Annotated[str, Form()],
            password: Annotated[str, Form()],
            next: Annotated[str, Form()] = self.path,
        ) -> Response:
            runtime: Runtime = request.app.state.runtime
            address = request.client.host if request.client else "unknown"
            context = {"next": self.safe_next(next), "email": email}
            try:
                signed = await self.sign_in(
                    runtime, email=email, password=password, address=address
                )
            except RateLimited as exc:
                response = render(
                    request, {**context, "error": "Too many attempts; try later."}, 429
                )
                response.headers.update(exc.headers)
                return response
            if signed is None:
                return render(request, {**context, "error": self.denied}, 401)
            response = RedirectResponse(self.safe_next(next), status_code=303)
            settings: Settings = request.app.state.settings
            response.set_cookie(
                self.cookie_name,
                signed[1],
                max_age=self.max_age_seconds,
                path=self.path,
                httponly=True,
                # The forms carry no CSRF token: a strict same-site cookie is what stops another
                # site from posting them with the viewer's session.
                samesite="strict",
                secure=settings.base_url.startswith("https://"),
            )
            return response

        @router.post("/logout")
        async def logout() -> Response:
            response = RedirectResponse(self.login_path, status_code=303)
            response.delete_cookie(self.cookie_name, path=self.path)
            return response

        return router

    def install(self, app: FastAPI, render: Render) -> None:
        """Mount the sign-in routes and send requests without a session to the form."""
        app.include_router(self.routes(render))
        app.add_exception_handler(SignInRequired, _sign_in_required)


def _fingerprint(user: User) -> str:
    return hash_token(user.password_hash)[:16]


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    login = exc.web.login_path
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": login})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{login}?next={quote(target)}", status_code=303)
