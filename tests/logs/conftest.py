"""Fixtures of the logs system. chDB opens one directory per process, so every logs test of a
pytest run shares one store (`log_store`) and the apps built by tests open the same directory;
tests keep apart by writing under their own tenant (`tenant`)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from shopkeeper.app import create_app
from shopkeeper.core.db import Database
from shopkeeper.core.migrate import upgrade_database
from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore, open_store
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
async def logs_settings(logs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings of a logs-enabled app on a migrated SQLite database and the shared chDB dir."""
    var_dir = tmp_path_factory.mktemp("logs-var")
    settings = make_settings(
        f"sqlite+aiosqlite:///{var_dir / 'logs.db'}",
        var_dir,
        logs_dir=logs_dir,
        logs_enabled=True,
        logs_ship_own_logs=False,
        logs_syslog_port=0,  # tests start their own receivers on free ports
    )
    database = Database(settings)
    try:
        await upgrade_database(database)
    finally:
        await database.dispose()
    return settings


@pytest.fixture(scope="session")
async def log_store(logs_settings: Settings) -> AsyncIterator[LogStore]:
    store = await open_store(logs_settings)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def tenant() -> str:
    """A tenant of this test alone, so tests sharing the store never see each other's lines."""
    return f"t_{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
async def logs_app(logs_settings: Settings, log_store: LogStore) -> AsyncIterator[FastAPI]:
    application = create_app(logs_settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def logs_client(logs_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=logs_app), base_url="http://test"
    ) as http:
        yield http


async def make_key(settings: Settings, *, scopes: list[str], tenant: str) -> str:
    """A real API key (plaintext) in the logs app's database."""
    from shopkeeper.accounts.service import create_api_key

    database = Database(settings)
    try:
        async with database.session() as session:
            _, plaintext = await create_api_key(
                session, name=f"test-{tenant}", scopes=scopes, tenant=tenant
            )
    finally:
        await database.dispose()
    return plaintext


@pytest.fixture
async def write_key(logs_settings: Settings, tenant: str) -> str:
    """A `logs:write` key of this test's tenant."""
    return await make_key(logs_settings, scopes=["logs:write"], tenant=tenant)


@pytest.fixture
async def ingest_client(logs_client: httpx.AsyncClient, write_key: str) -> httpx.AsyncClient:
    """A client sending this test's `logs:write` key: what it ingests lands in `tenant`."""
    logs_client.headers["Authorization"] = f"Bearer {write_key}"
    return logs_client


async def stored_rows(store: LogStore, tenant: str) -> list[dict[str, object]]:
    """Every stored line of a tenant, oldest first, with `ns` the timestamp in nanoseconds."""
    return await store.query(
        f"SELECT *, toUnixTimestamp64Nano(timestamp) AS ns FROM {store.table} "
        "WHERE tenant = {tenant:String} ORDER BY timestamp, message",
        {"tenant": tenant},
    )


class LiveServer:
    """The app served by uvicorn on a loopback port, in a thread of this process (so that it
    shares the chDB directory with `log_store`), for clients that speak real HTTP."""

    def __init__(self, app: FastAPI, port: int) -> None:
        import uvicorn

        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(logs_settings: Settings, log_store: LogStore) -> Iterator[LiveServer]:
    from tests.conftest import free_port

    server = LiveServer(create_app(logs_settings), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class LiveIngest:
    url: str
    key: str
    """A `logs:write` key of the test's tenant."""


@pytest.fixture
def live_ingest(live_server: LiveServer, write_key: str) -> LiveIngest:
    return LiveIngest(live_server.url, write_key)
