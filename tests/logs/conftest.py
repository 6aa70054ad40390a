"""Fixtures of the logs system. chDB opens one directory per process, so every logs test of a
pytest run shares one store (`log_store`) and the apps built by tests open the same directory;
tests keep apart by writing under their own tenant (`tenant`)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
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


@pytest.fixture
async def ingest_client(
    logs_app: FastAPI, logs_client: httpx.AsyncClient, tenant: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose ingest requests write as this test's tenant."""
    from shopkeeper.logs.auth import write_tenant

    async def as_tenant() -> str:
        return tenant

    logs_app.dependency_overrides[write_tenant] = as_tenant
    try:
        yield logs_client
    finally:
        logs_app.dependency_overrides.pop(write_tenant, None)


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


@pytest.fixture
def live_ingest(live_server: LiveServer, tenant: str) -> Iterator[LiveServer]:
    """The live server, its ingest writing as this test's tenant."""
    from shopkeeper.logs.auth import write_tenant

    async def as_tenant() -> str:
        return tenant

    live_server.app.dependency_overrides[write_tenant] = as_tenant
    try:
        yield live_server
    finally:
        live_server.app.dependency_overrides.pop(write_tenant, None)
