"""The frontier's behavioural suite runs on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shopkeeper.crawl.frontier.base import Frontier
from tests.conftest import REDIS_URL, require_service
from tests.crawl.frontier.support import FrontierTarget, close_frontier, open_frontier


@pytest.fixture(scope="session", params=["sqlite", "postgresql", "redis"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def frontier_target(backend: str, request: pytest.FixtureRequest) -> FrontierTarget:
    if backend == "redis":
        require_service("Redis", "127.0.0.1", 6379)
        return FrontierTarget(kind="redis", url=REDIS_URL)
    return FrontierTarget(kind="sql", url=str(request.getfixturevalue("database_url")))


@pytest.fixture
async def target(frontier_target: FrontierTarget) -> FrontierTarget:
    """This test's own namespace on Redis (SQL tests empty the tables afterwards)."""
    if frontier_target.kind == "redis":
        return FrontierTarget("redis", frontier_target.url, f"sktest-{secrets.token_hex(4)}")
    return frontier_target


@pytest.fixture
async def frontier(target: FrontierTarget, tmp_path: Path) -> AsyncIterator[Frontier]:
    opened = await open_frontier(target, tmp_path)
    try:
        yield opened
    finally:
        await close_frontier(opened, target, tmp_path, clean=True)
