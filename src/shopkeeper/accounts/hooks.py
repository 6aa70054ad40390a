"""What other systems do at a user's sign-in, without accounts knowing them: `app.py` lists
the hooks (the shop merges a guest cart named by `X-Cart-Token`)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

SignInHook = Callable[[AsyncSession, uuid.UUID, Mapping[str, str]], Awaitable[None]]
"""(the sign-in's session, the user's id, the request's headers)"""


def sign_in_hooks(request: Request) -> list[SignInHook]:
    hooks: list[SignInHook] = getattr(request.app.state, "sign_in_hooks", [])
    return hooks
