from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response, status
from fastapi.security import OAuth2PasswordRequestForm

from shopkeeper.accounts import service
from shopkeeper.accounts.schemas import RefreshRequest, RegisterRequest, TokenPair, UserOut
from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.runtime import AppRuntime, ClientAddress
from shopkeeper.core.security import CurrentUser
from shopkeeper.shop.carts import service as carts_service

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
    if cart_token:
        await carts_service.merge_guest_cart(session, user_id=user.id, cart_token=cart_token)
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
