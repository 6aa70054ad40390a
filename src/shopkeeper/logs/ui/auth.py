"""Signing in to the logs UI: the shared web session (`accounts.web`) with the logs' cookie,
path and permission (`logs:read`)."""

from __future__ import annotations

from typing import Annotated

from shopkeeper.accounts.models import User
from shopkeeper.accounts.web import SignInRequired, Viewer, WebSession
from shopkeeper.core.runtime import Runtime

__all__ = ["SESSION", "CurrentViewer", "SignInRequired", "Viewer", "may_read_logs", "sign_in"]

READ = "logs:read"
SESSION = WebSession(
    cookie_name="shopkeeper_logs",
    path="/logs",
    permission=READ,
    salt="logs-ui-session",
    denied="Wrong e-mail or password, or this account may not read logs.",
)


def may_read_logs(user: User) -> bool:
    return SESSION.may_use(user)


async def sign_in(
    runtime: Runtime, *, email: str, password: str, address: str
) -> tuple[User, str] | None:
    """The user and their session cookie's value, or None (wrong password, no `logs:read`).
    Raises `RateLimited` past the login budgets."""
    return await SESSION.sign_in(runtime, email=email, password=password, address=address)


CurrentViewer = Annotated[Viewer, SESSION.dependency()]
