"""Reactions to the users domain's own events."""

from __future__ import annotations

from shopkeeper.accounts.events import UserRegistered
from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.runtime import HandlerContext


@handles(UserRegistered)
async def send_welcome_mail(ctx: HandlerContext, event: UserRegistered) -> None:
    await ctx.mailer.send(
        ctx.session,
        to=event.email,
        template="welcome",
        context={"email": event.email, "full_name": event.full_name},
    )
