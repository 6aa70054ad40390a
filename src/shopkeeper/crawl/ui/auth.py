"""Signing in to the crawl UI: the shared web session (`accounts.web`) with the crawl's cookie,
path and permission. Viewing needs `crawl:read`; actions need `crawl:write` too."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shopkeeper.accounts.permissions import PermissionDenied
from shopkeeper.accounts.web import Viewer, WebSession
from shopkeeper.crawl.auth import READ, WRITE

SESSION = WebSession(
    cookie_name="shopkeeper_crawl",
    path="/crawl",
    permission=READ,
    salt="crawl-ui-session",
    denied="Wrong e-mail or password, or this account may not read crawls.",
)

CurrentViewer = Annotated[Viewer, SESSION.dependency()]


async def writer(viewer: CurrentViewer) -> Viewer:
    """The viewer, if they may change crawls; 403 (problem+json) otherwise."""
    if not viewer.can(WRITE):
        raise PermissionDenied(f"This needs the `{WRITE}` permission")
    return viewer


CurrentWriter = Annotated[Viewer, Depends(writer)]
