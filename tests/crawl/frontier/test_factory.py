"""The frontier the settings choose."""

from __future__ import annotations

from pathlib import Path

import pytest

from shopkeeper.core.db import Database
from shopkeeper.crawl.frontier.factory import FrontierConfigError, build_frontier
from shopkeeper.crawl.frontier.redis import RedisFrontier
from shopkeeper.crawl.frontier.sql import SQLFrontier
from tests.conftest import REDIS_URL, make_settings


async def test_settings_choose_the_frontier(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'f.db'}"
    database = Database(make_settings(url, tmp_path))
    try:
        assert isinstance(build_frontier(make_settings(url, tmp_path), database), SQLFrontier)
        settings = make_settings(url, tmp_path, crawl_frontier="redis", redis_url=REDIS_URL)
        frontier = build_frontier(settings, database)
        assert isinstance(frontier, RedisFrontier)
        await frontier.close()
        with pytest.raises(FrontierConfigError):
            build_frontier(make_settings(url, tmp_path, crawl_frontier="redis"), database)
    finally:
        await database.dispose()
