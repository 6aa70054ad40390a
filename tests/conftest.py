"""Shared fixtures. Every test that touches the database runs twice: on SQLite and on PostgreSQL
(a fresh database per run). Under CI=true an unreachable PostgreSQL fails the run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from shopkeeper.app import create_app
from shopkeeper.core.db import Database
from shopkeeper.core.migrate import all_metadata, upgrade_database
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings

POSTGRES_ADMIN_URL = os.environ.get(
    "SHOPKEEPER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("SHOPKEEPER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BROKER_URL = os.environ.get("SHOPKEEPER_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_SECRET = "test-secret-key-" + "x" * 40
BACKENDS = ["sqlite", "postgresql"]

pytest_plugins = ["tests.support.fixtures", "tests.support.browser"]

# Modules whose tests start real processes, browsers or whole topologies: `make test` (and CI)
# runs them; `make test-quick` leaves them out for a short loop while working.
SLOW_MODULES = (
    "tests/deploy/test_local_topology.py",
    "tests/crawl/schedules/test_scheduler_processes.py",
    "tests/crawl/scrapy/",
    "tests/crawl/spiders/",
    "tests/crawl/ui/test_browser.py",
    "tests/crawl/jobs/test_lost_workers.py",
    "tests/logs/alerts/test_schedulers.py",
    "tests/logs/ui/test_browser.py",
    "tests/logs/buffer/test_writer_crash.py",
    "tests/shop/admin/test_operator_day.py",
    "tests/core/test_pages.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if any(path.startswith(module) for module in SLOW_MODULES):
            item.add_marker(pytest.mark.slow)


def _reachable(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def require_service(name: str, host: str, port: int) -> None:
    """Skip locally when a server is down; in CI a missing server is a failure, not a skip."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(message + " (CI=true: tests that need it must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shopkeeper")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
async def database_url(backend: str, tmp_root: Path) -> AsyncIterator[str]:
    """A migrated, empty database for this test run."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / 'test.db'}"
        await _migrate(url, tmp_root)
        yield url
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"shopkeeper_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    try:
        await _migrate(url, tmp_root)
        yield url
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _migrate(url: str, tmp_root: Path) -> None:
    database = Database(make_settings(url, tmp_root))
    try:
        await upgrade_database(database)
    finally:
        await database.dispose()


def make_settings(database_url: str, var_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "var_dir": var_dir,
        "secret_key": TEST_SECRET,
        "sandbox_webhook_secret": "sandbox-test-secret",
        "log_json": True,
        "log_level": "WARNING",
        "run_background_in_process": False,
        # chDB opens one directory per process: the logs tests share one (tests/logs/conftest.py).
        "logs_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings_factory(database_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings for this test's database; keyword arguments override fields."""

    def build(**overrides: Any) -> Settings:
        url = overrides.pop("database_url", database_url)
        return make_settings(url, tmp_path, **overrides)

    return build


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture(scope="session")
async def shared_database(database_url: str, tmp_root: Path) -> AsyncIterator[Database]:
    database = Database(make_settings(database_url, tmp_root))
    yield database
    await database.dispose()


@pytest.fixture
async def runtime(settings: Settings, shared_database: Database) -> AsyncIterator[Runtime]:
    """A runtime on the shared engine (fresh rate limits each test); tables emptied afterwards."""
    active = Runtime(settings=settings, db=shared_database, ratelimiter=RateLimiter(settings))
    try:
        yield active
    finally:
        await empty_tables(shared_database)


@pytest.fixture
async def session(runtime: Runtime) -> AsyncIterator[Any]:
    async with runtime.db.session() as db_session:
        yield db_session


async def empty_tables(database: Database) -> None:
    tables = [table.name for table in reversed(all_metadata().sorted_tables)]
    async with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in tables:
                await connection.execute(text(f'DELETE FROM "{name}"'))
        else:
            quoted = ", ".join(f'"{name}"' for name in tables)
            await connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def app(runtime: Runtime) -> AsyncIterator[FastAPI]:
    application = create_app(runtime=runtime)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        yield http


# --- users and tokens -------------------------------------------------------------------------


async def register_and_login(
    client: httpx.AsyncClient, email: str | None = None, password: str = "correct-horse-1"
) -> dict[str, str]:
    """Register a customer over HTTP and return `Authorization` headers for it."""
    email = email or f"user-{secrets.token_hex(4)}@example.com"
    response = await client.post(
        "/api/v1/auth/register", json={"email": email, "password": password}
    )
    assert response.status_code == 201, response.text
    return await login(client, email, password)


async def login(client: httpx.AsyncClient, email: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def create_staff(runtime: Runtime, client: httpx.AsyncClient) -> dict[str, str]:
    """A staff user made the way operators make one, and its `Authorization` headers."""
    from shopkeeper.accounts import service

    email = f"staff-{secrets.token_hex(4)}@example.com"
    async with runtime.db.session() as db_session:
        await service.register_user(
            db_session, email=email, password="staff-password-1", roles=("admin",)
        )
    return await login(client, email, "staff-password-1")


# --- real server processes ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment variables that reproduce `settings` in a child process."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SHOPKEEPER_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        if isinstance(value, list):
            value = json.dumps(value)
        env[f"SHOPKEEPER_{name.upper()}"] = (
            str(value).lower() if isinstance(value, bool) else str(value)
        )
    env.update(extra)
    return env


class ServerProcess:
    """`shopkeeper <command>` in a child process, stopped at the end of the test."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "shopkeeper.cli", *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, sig: int = 15) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_until_ready(base_url: str, process: ServerProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.process.poll() is not None:
                raise RuntimeError("server exited:\n" + process.output()[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/health/live")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("server did not start:\n" + process.output()[-3000:])


@pytest.fixture
def process_factory(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start `shopkeeper` commands (serve, worker, scheduler) as real child processes."""
    started: list[ServerProcess] = []

    def start(args: list[str], env: dict[str, str]) -> ServerProcess:
        process = ServerProcess(args, env, tmp_path / f"process-{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def server_factory(
    process_factory: Callable[..., ServerProcess],
) -> Callable[..., Any]:
    """`await start(settings, workers=1, **env)` -> base URL of a running `shopkeeper serve`."""

    async def start(settings: Settings, workers: int = 1, **extra_env: str) -> str:
        port = free_port()
        env = settings_env(
            settings, SHOPKEEPER_HOST="127.0.0.1", SHOPKEEPER_PORT=str(port), **extra_env
        )
        process = process_factory(["serve", "--workers", str(workers)], env)
        base_url = f"http://127.0.0.1:{port}"
        await wait_until_ready(base_url, process)
        return base_url

    return start
