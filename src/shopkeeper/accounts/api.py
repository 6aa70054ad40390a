from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from shopkeeper.accounts import service
from shopkeeper.accounts.hooks import sign_in_hooks
from shopkeeper.accounts.permissions import AccountsAdmin, CurrentUser
from shopkeeper.accounts.schemas import (
    ApiKeyCreated,
    ApiKeyIn,
    ApiKeyOut,
    ApiKeyPage,
    RefreshRequest,
    RegisterRequest,
    RolesIn,
    TokenPair,
    UserOut,
)
from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.runtime import AppRuntime, ClientAddress

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    responses=problem_responses(409, 422, s409="`email-taken`"),
)
async def register(body: RegisterRequest, session: Session) -> UserOut:
    user = await service.register_user(
        session, email=body.email, password=body.password, full_name=body.full_name
    )
    return UserOut.model_validate(user)


@router.post(
    "/auth/token",
    response_model=TokenPair,
    responses=problem_responses(
        401, 422, 429, s401="`invalid-credentials`", s429="`rate-limited` after repeated failures"
    ),
)
async def issue_token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    request: Request,
    session: Session,
    runtime: AppRuntime,
    address: ClientAddress,
    cart_token: Annotated[
        str | None,
        Header(
            alias="X-Cart-Token",
            max_length=128,
            description="A guest cart to merge into the user's cart at sign-in",
        ),
    ] = None,
) -> TokenPair:
    """OAuth2 password flow: `username` is the e-mail."""
    user, pair = await service.authenticate(
        session,
        settings=runtime.settings,
        ratelimiter=runtime.ratelimiter,
        email=form.username,
        password=form.password,
        client_address=address,
    )
    for hook in sign_in_hooks(request):
        await hook(session, user.id, request.headers)
    return pair


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    responses=problem_responses(
        401, 422, s401="`invalid-refresh-token`; `refresh-token-reused` (the family is revoked)"
    ),
)
async def refresh(body: RefreshRequest, session: Session, runtime: AppRuntime) -> TokenPair:
    return await service.rotate_refresh_token(
        session, settings=runtime.settings, refresh_token=body.refresh_token
    )


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problem_responses(422),
)
async def logout(body: RefreshRequest, session: Session) -> Response:
    await service.logout(session, refresh_token=body.refresh_token)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/users/me",
    response_model=UserOut,
    tags=["users"],
    responses=problem_responses(401, 404),
)
async def me(principal: CurrentUser, session: Session) -> UserOut:
    return UserOut.model_validate(await service.get_user(session, user_id=principal.user_id))


@router.put(
    "/users/{user_id}/roles",
    response_model=UserOut,
    tags=["users"],
    responses=problem_responses(401, 403, 404, 422, s422="`unknown-role`"),
)
async def set_roles(
    user_id: uuid.UUID, body: RolesIn, _admin: AccountsAdmin, session: Session
) -> UserOut:
    """Replace a user's roles (admin). Their tokens carry the new permissions from their next
    refresh, at most one access-token lifetime (15 minutes) later."""
    user = await service.set_user_roles(session, user_id=user_id, roles=body.roles)
    return UserOut.model_validate(user)


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    tags=["keys"],
    responses=problem_responses(401, 403, 422, s422="`unknown-scope`"),
)
async def create_key(body: ApiKeyIn, _admin: AccountsAdmin, session: Session) -> ApiKeyCreated:
    """A scoped key for a machine. `key` is in this answer only; we keep its hash."""
    key, plaintext = await service.create_api_key(
        session, name=body.name, scopes=body.scopes, tenant=body.tenant
    )
    return ApiKeyCreated(**ApiKeyOut.model_validate(key).model_dump(), key=plaintext)


@router.get(
    "/keys",
    response_model=ApiKeyPage,
    tags=["keys"],
    responses=problem_responses(401, 403, 422, s422="`invalid-cursor`"),
)
async def list_keys(
    _admin: AccountsAdmin,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> ApiKeyPage:
    keys, next_cursor = await service.list_api_keys(session, limit=limit, cursor=cursor)
    return ApiKeyPage(
        items=[ApiKeyOut.model_validate(key) for key in keys], next_cursor=next_cursor
    )


@router.delete(
    "/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    tags=["keys"],
    responses=problem_responses(401, 403, 404, s404="`api-key-not-found`"),
)
async def revoke_key(key_id: uuid.UUID, _admin: AccountsAdmin, session: Session) -> Response:
    """The key stops working at once, on every process (keys are looked up per request)."""
    await service.revoke_api_key(session, key_id=key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
