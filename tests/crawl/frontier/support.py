"""Opening a frontier from a description, in the test process or in a child process."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from shopkeeper.core.db import Database
from shopkeeper.core.settings import Settings
from shopkeeper.crawl.frontier.base import Frontier


def database_for(url: str, var_dir: Path) -> Database:
    # Not tests.conftest's make_settings: child processes would import the whole app with it.
    return Database(
        Settings(
            environment="test",
            database_url=url,
            var_dir=var_dir,
            secret_key="frontier-test-secret-" + "x" * 40,
            sandbox_webhook_secret="frontier-test",
        )
    )


FRONTIER_TABLES = ["crawl_urls", "crawl_host_policies", "crawl_hosts", "crawl_frontier_crawls"]


@dataclass(frozen=True)
class FrontierTarget:
    """Where a frontier lives: enough for another process to open the same one."""

    kind: str
    url: str
    namespace: str = ""


async def open_frontier(target: FrontierTarget, var_dir: Path) -> Frontier:
    if target.kind == "redis":
        import redis.asyncio as redis_asyncio

        from shopkeeper.crawl.frontier.redis import RedisFrontier

        client = redis_asyncio.from_url(target.url)
        return RedisFrontier(client, namespace=target.namespace, owns_client=True)
    from shopkeeper.crawl.frontier.sql import SQLFrontier

    return SQLFrontier(database_for(target.url, var_dir), owns_database=True)


async def close_frontier(
    frontier: Frontier, target: FrontierTarget, var_dir: Path, *, clean: bool = False
) -> None:
    if clean and target.kind == "redis":
        from shopkeeper.crawl.frontier.redis import RedisFrontier

        assert isinstance(frontier, RedisFrontier)
        await frontier.delete_namespace()
    elif clean:
        database = database_for(target.url, var_dir)
        async with database.engine.begin() as connection:
            for table in FRONTIER_TABLES:
                await connection.execute(text(f"DELETE FROM {table}"))
        await database.dispose()
    await frontier.close()
