"""Fixtures of the logs system. chDB opens one directory per process, so every logs test of a
pytest run shares one store (`log_store`) and apps built by tests open the same directory;
tests keep apart by writing under their own tenant (`tenant`)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore, open_store
from tests.conftest import make_settings


@pytest.fixture(scope="session")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def logs_settings(logs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    var_dir = tmp_path_factory.mktemp("logs-var")
    return make_settings(f"sqlite+aiosqlite:///{var_dir / 'logs.db'}", var_dir, logs_dir=logs_dir)


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
