"""The crawl UI's tests: users made as operators make them (`crawl_operator` may act,
`crawl_viewer` may only look), signed in through the form; API keys for what the tests drive
through the API (starting crawls, making schedules and watches)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings
from tests.crawl.scheduling import spiders_toml

PASSWORD = "crawl-ui-password-1"
API = "/api/v1/crawl"


async def make_user(settings: Settings, *roles: str) -> str:
    """A user with `roles` in the app's database; returns the e-mail (password PASSWORD)."""
    from shopkeeper.accounts import service

    email = f"crawler-{secrets.token_hex(4)}@example.com"
    database = Database(settings)
    try:
        async with database.session() as session:
            await service.register_user(session, email=email, password=PASSWORD, roles=roles)
    finally:
        await database.dispose()
    return email


async def make_key(settings: Settings, *scopes: str) -> str:
    from shopkeeper.accounts.service import create_api_key

    database = Database(settings)
    try:
        async with database.session() as session:
            _, plaintext = await create_api_key(
                session, name=f"crawl-ui-{secrets.token_hex(3)}", scopes=list(scopes)
            )
    finally:
        await database.dispose()
    return plaintext


async def sign_in(http: httpx.AsyncClient, email: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post(
        "/crawl/login", data={"email": email, "password": password, "next": "/crawl"}
    )


@dataclass(frozen=True)
class CrawlUi:
    """A running `shopkeeper serve` (embedded worker and scheduler), its users and a key."""

    url: str
    operator: str
    viewer: str
    key: str

    def api(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url + API, headers={"Authorization": f"Bearer {self.key}"}, timeout=30
        )


@pytest.fixture
def ui_settings(settings_factory: Callable[..., Settings], tmp_path: Path) -> Settings:
    spiders = tmp_path / "spiders.toml"
    spiders.write_text(spiders_toml())
    return settings_factory(
        crawl_spiders_file=spiders,
        # The embedded serve runs a crawl worker, the schedules and the price-watch round.
        crawl_inprocess_worker=True,
        run_background_in_process=True,
        scheduler_tick_seconds=0.2,
        outbox_poll_seconds=0.2,
        crawl_lease_seconds=3.0,
        crawl_heartbeat_seconds=0.5,
        crawl_retry_base_seconds=0.2,
        crawl_retry_max_seconds=1.0,
        crawl_fetch_timeout_seconds=2.0,
    )


@pytest.fixture
async def crawl_ui(ui_settings: Settings, server_factory: Callable[..., Any]) -> CrawlUi:
    operator = await make_user(ui_settings, "crawl_operator")
    viewer = await make_user(ui_settings, "crawl_viewer")
    key = await make_key(ui_settings, "crawl:read", "crawl:write")
    url = await server_factory(ui_settings)
    return CrawlUi(url=url, operator=operator, viewer=viewer, key=key)
