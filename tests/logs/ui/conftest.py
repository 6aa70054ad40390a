"""Users of the logs UI: accounts made as operators make them, signed in through the form."""

from __future__ import annotations

import secrets

import httpx

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings

PASSWORD = "reader-password-1"


async def make_user(settings: Settings, *roles: str) -> str:
    """A user with `roles` in the app's database; returns the e-mail (password PASSWORD)."""
    from shopkeeper.accounts import service

    email = f"viewer-{secrets.token_hex(4)}@example.com"
    database = Database(settings)
    try:
        async with database.session() as session:
            await service.register_user(session, email=email, password=PASSWORD, roles=roles)
    finally:
        await database.dispose()
    return email


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post(
        "/logs/login", data={"email": email, "password": password, "next": "/logs"}
    )
