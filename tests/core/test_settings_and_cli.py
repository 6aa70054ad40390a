"""Settings refuse unsafe production values; the CLI and start-up create staff users."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import ValidationError

from shopkeeper.app import create_app
from shopkeeper.core.settings import Settings
from tests.conftest import login, settings_env


def test_production_requires_a_strong_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY is required"):
        Settings(environment="production", var_dir=tmp_path, sandbox_enabled=False)
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(
            environment="production", var_dir=tmp_path, secret_key="changeme", sandbox_enabled=False
        )


def test_embedded_mode_generates_and_keeps_a_secret(tmp_path: Path) -> None:
    first = Settings(var_dir=tmp_path)
    second = Settings(var_dir=tmp_path)
    assert first.secret_key is not None and second.secret_key is not None
    assert len(first.secret_key.get_secret_value()) >= 32
    assert first.secret_key.get_secret_value() == second.secret_key.get_secret_value()
    assert first.database.startswith("sqlite+aiosqlite:///")


def test_currency_must_be_iso_shaped(tmp_path: Path) -> None:
    assert Settings(var_dir=tmp_path, currency="eur").currency == "EUR"
    with pytest.raises(ValidationError):
        Settings(var_dir=tmp_path, currency="EURO")


async def test_admin_is_bootstrapped_from_settings(
    settings_factory: Callable[..., Settings], runtime: object
) -> None:
    settings = settings_factory(admin_email="Boss@Example.com", admin_password="boss-password-1")
    app = create_app(settings)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        headers = await login(client, "boss@example.com", "boss-password-1")
        me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["is_staff"] is True


async def test_cli_creates_a_staff_user(settings: Settings, client: httpx.AsyncClient) -> None:
    env = settings_env(settings)
    command = [sys.executable, "-m", "shopkeeper.cli", "users", "create"]
    created = subprocess.run(
        [*command, "--email", "ops@example.com", "--password", "ops-password-1", "--staff"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    again = subprocess.run(
        [*command, "--email", "ops@example.com", "--password", "ops-password-1"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "already registered" in again.stderr
    too_short = subprocess.run(
        [*command, "--email", "x@example.com", "--password", "short"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert too_short.returncode == 2

    headers = await login(client, "ops@example.com", "ops-password-1")
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.json()["is_staff"] is True
