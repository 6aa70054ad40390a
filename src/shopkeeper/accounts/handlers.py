"""Reactions to the users domain's own events."""

from __future__ import annotations

from typing import Any

from shopkeeper.accounts.events import UserRegistered
from shopkeeper.core.events import HandlerContext, handles


@handles(UserRegistered)
async def send_welcome_mail(ctx: HandlerContext, payload: dict[str, Any]) -> None:
    await ctx.runtime.mailer.send(
        to=payload["email"],
        template="welcome",
        context={"email": payload["email"], "full_name": payload.get("full_name")},
    )
