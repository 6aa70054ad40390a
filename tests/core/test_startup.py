"""Starting and failing clearly: bad settings and unusable databases stop the CLI and `serve`
with two lines (the problem, the fix) and no traceback; an unmigrated database makes readiness
and the API answer 503; `postgresql://` works as written; `seed` twice does not crash."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from shopkeeper.app import create_app
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.catalog.models import Product
from tests.conftest import POSTGRES_ADMIN_URL, make_settings, settings_env

CLI = [sys.executable, "-m", "shopkeeper.cli"]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("fix: ")
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("written", "used"),
    [
        ("postgresql://shop:pw@db:5432/shop", "postgresql+asyncpg://shop:pw@db:5432/shop"),
        ("postgres://shop@db/shop", "postgresql+asyncpg://shop@db/shop"),
        ("postgresql+asyncpg://db/shop", "postgresql+asyncpg://db/shop"),
        ("sqlite:///var/shop.db", "sqlite+aiosqlite:///var/shop.db"),
    ],
)
def test_database_urls_as_people_write_them_run_on_the_async_drivers(
    tmp_path: Path, written: str, used: str
) -> None:
    assert Settings(var_dir=tmp_path, database_url=written).database == used


@pytest.mark.parametrize("url", ["nonsense", "mysql://db/shop", "postgresql+psycopg2://db/x", ""])
def test_unusable_database_urls_are_refused_by_name(tmp_path: Path, url: str) -> None:
    with pytest.raises(ValidationError, match="database_url"):
        Settings(var_dir=tmp_path, database_url=url)


@pytest.mark.parametrize(
    ("command", "environment", "needles"),
    [
        (["serve"], {"SHOPKEEPER_DATABASE_URL": "nonsense"}, ["SHOPKEEPER_DATABASE_URL"]),
        (["migrate"], {"SHOPKEEPER_DATABASE_URL": "nonsense"}, ["postgresql://"]),
        (["users", "list"], {"SHOPKEEPER_DATABASE_URL": "x"}, ["SHOPKEEPER_DATABASE_URL"]),
        (["serve"], {"SHOPKEEPER_DATABASE_URL": "mysql://u:hunter2@db/x"}, ["u:***@db"]),
        (
            ["serve"],
            {"SHOPKEEPER_DATABASE_URL": "postgresql://127.0.0.1:1/shop"},
            ["cannot connect", "127.0.0.1:1", "host and port"],
        ),
        (
            ["migrate"],
            {"SHOPKEEPER_DATABASE_URL": "postgresql://127.0.0.1:1/shop"},
            ["cannot connect"],
        ),
        (["serve"], {"SHOPKEEPER_PORT": "eighty"}, ["SHOPKEEPER_PORT", "valid integer"]),
        (["seed"], {"SHOPKEEPER_CURRENCY": "EURO"}, ["SHOPKEEPER_CURRENCY", "ISO 4217"]),
        (
            ["serve", "--workers", "2"],
            {"SHOPKEEPER_ENVIRONMENT": "production", "SHOPKEEPER_SANDBOX_ENABLED": "false"},
            ["SHOPKEEPER_SECRET_KEY is required"],
        ),
    ],
)
def test_bad_settings_stop_the_cli_and_serve_in_two_lines(
    tmp_path: Path, command: list[str], environment: dict[str, str], needles: list[str]
) -> None:
    env = settings_env(make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path), **environment)
    if "SHOPKEEPER_SECRET_KEY is required" in needles:
        env.pop("SHOPKEEPER_SECRET_KEY")
    result = run_cli(command, env)
    assert_refused(result, *needles)
    assert "hunter2" not in result.stderr


def test_a_missing_postgresql_database_is_named_with_the_fix(tmp_path: Path) -> None:
    missing = f"shopkeeper_missing_{secrets.token_hex(3)}"
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("+asyncpg", "") + "/" + missing
    env = settings_env(make_settings(url, tmp_path))
    assert_refused(run_cli(["serve"], env), f"'{missing}' does not exist", "createdb")


@pytest.fixture
async def unmigrated_url(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database no migration ran on, on this test's backend."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'unmigrated.db'}"
        return
    name = f"shopkeeper_unmigrated_{secrets.token_hex(4)}"
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        # Plain `postgresql://`, as an operator writes it.
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("+asyncpg", "") + "/" + name
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_an_unmigrated_database_stops_the_cli_and_answers_503(
    tmp_path: Path, unmigrated_url: str
) -> None:
    settings = make_settings(unmigrated_url, tmp_path)
    env = settings_env(settings)
    for command in (["serve"], ["seed", "--products", "1"], ["users", "list"]):
        assert_refused(run_cli(command, env), "not migrated", "shopkeeper migrate")

    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert ready.json()["failed"] == ["migrations"]
        assert ready.json()["checks"]["migrations"].startswith("migrations pending")
        assert ready.json()["checks"]["database"] == "ok"
        for path in ("/api/v1/products", "/api/v1/categories"):
            answer = await client.get(path)
            assert answer.status_code == 503, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["type"].endswith("/migrations-pending")

    migrated = run_cli(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        assert (await client.get("/health/ready")).status_code == 200
        assert (await client.get("/api/v1/products")).status_code == 200


async def test_seed_twice_without_if_empty_adds_more_products(
    settings: Settings, runtime: Runtime
) -> None:
    env = settings_env(settings)
    for _ in range(2):
        seeded = run_cli(["seed", "--products", "30"], env)
        assert seeded.returncode == 0, seeded.stderr
        assert "Traceback" not in seeded.stderr
    async with runtime.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 60
    again = run_cli(["seed", "--products", "30", "--if-empty"], env)
    assert again.returncode == 0 and "catalog not empty" in again.stderr
