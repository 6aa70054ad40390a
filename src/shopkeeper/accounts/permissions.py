"""Who is calling, and may they: the request dependencies of all three systems.

People sign in and send `Authorization: Bearer <access token>`. Machines (log shippers, crawl
workers, Elasticsearch and Loki clients) send an API key the way their software already can:
as a Bearer token, as the password of HTTP Basic auth (any user name), or as `ApiKey <key>`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import OAuth2PasswordBearer

from shopkeeper.accounts.liveness import ensure_active_user
from shopkeeper.accounts.service import API_KEY_PREFIX, actor_for_presented_key
from shopkeeper.core.errors import Forbidden, Unauthorized
from shopkeeper.core.security import Actor, Principal, decode_access_token
from shopkeeper.core.settings import Settings


class PermissionDenied(Forbidden):
    slug, title = "permission-denied", "Permission denied"


# Declares the OAuth2 password flow (and each endpoint's permission as its scope) in the OpenAPI
# document; the header itself is read by `_credentials`, which also knows the machines' forms.
oauth2_scheme = OAuth2PasswordBearer(
    tokenUrl="/api/v1/auth/token", auto_error=False, scheme_name="OAuth2PasswordBearer"
)


async def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(settings_of)]


def _credentials(request: Request) -> tuple[str, str] | None:
    """("token" | "key", value) from the Authorization header, or None when there is none."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme, value = scheme.lower(), value.strip()
    if not value:
        raise Unauthorized("Malformed Authorization header")
    if scheme == "bearer":
        return ("key", value) if value.startswith(API_KEY_PREFIX) else ("token", value)
    if scheme == "apikey":
        return ("key", value)
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise Unauthorized("Malformed Basic credentials") from exc
        return ("key", decoded.partition(":")[2])
    raise Unauthorized(f"Unsupported authorization scheme {scheme!r}")


async def authenticate(request: Request) -> Actor | None:
    """The caller, or None without credentials; bad credentials are 401. Keys are looked up on
    every request (one indexed read, outside a transaction), so a revoked key stops working at
    once on every process."""
    credentials = _credentials(request)
    if credentials is None:
        return None
    kind, value = credentials
    if kind == "token":
        principal = decode_access_token(value, request.app.state.settings)
        await ensure_active_user(request.app.state.runtime.db, principal.user_id)
        return Actor(user_id=principal.user_id, key_id=None, permissions=principal.permissions)
    return await actor_for_presented_key(request.app.state.runtime.db, value)


def require(permission: str) -> Callable[..., Awaitable[Actor]]:
    """A dependency admitting users whose roles, or keys whose scopes, grant `permission`."""

    async def dependency(
        request: Request, _token: Annotated[str | None, Depends(oauth2_scheme)]
    ) -> Actor:
        actor = await authenticate(request)
        if actor is None:
            raise Unauthorized("Send `Authorization: Bearer <access token or API key>`")
        if not actor.can(permission):
            raise PermissionDenied(f"This needs the `{permission}` permission")
        return actor

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return dependency


def permission(name: str) -> object:
    """`Security(require(name), scopes=[name])`: the permission shows in the OpenAPI document."""
    return Security(require(name), scopes=[name])


def _user_token(token: str | None, settings: Settings) -> Principal | None:
    if token is None:
        return None
    if token.startswith(API_KEY_PREFIX):
        raise Unauthorized("API keys are for machines; this endpoint is for signed-in users")
    return decode_access_token(token, settings)


async def optional_principal(
    request: Request, settings: AppSettings, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal | None:
    principal = _user_token(token, settings)
    if principal is not None:
        await ensure_active_user(request.app.state.runtime.db, principal.user_id)
    return principal


async def unverified_principal(
    settings: AppSettings, token: Annotated[str | None, Depends(oauth2_scheme)]
) -> Principal | None:
    """`optional_principal` without asking whether the account still exists: only for an
    endpoint that asks it itself, in a statement of its own work, and answers 401
    `account-gone` on every path (checkout, see `shop.orders.api`). Saves a round trip."""
    return _user_token(token, settings)


async def current_principal(
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> Principal:
    if principal is None:
        raise Unauthorized("Send `Authorization: Bearer <access_token>`")
    return principal


def require_user(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A signed-in user (not a key) holding `permission`: staff endpoints act as a person."""

    async def dependency(
        principal: Annotated[Principal, Depends(current_principal)],
    ) -> Principal:
        if not principal.can(permission):
            raise PermissionDenied(f"This needs the `{permission}` permission")
        return principal

    dependency.__name__ = f"require_user_{permission.replace(':', '_')}"
    return dependency


def user_permission(name: str) -> object:
    return Security(require_user(name), scopes=[name])


OptionalUser = Annotated[Principal | None, Depends(optional_principal)]
CurrentUser = Annotated[Principal, Depends(current_principal)]
AccountsAdmin = Annotated[Principal, user_permission("accounts:admin")]
