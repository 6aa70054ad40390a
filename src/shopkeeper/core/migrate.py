"""Apply Alembic migrations from code (the CLI, start-up checks and tests)."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from shopkeeper.core.db import Base, Database
from shopkeeper.core.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def all_metadata() -> MetaData:
    """The metadata of every domain: importing each `models` module of the package tree
    registers its tables. `core` knows no system by name; it finds them."""
    import shopkeeper

    for module in pkgutil.walk_packages(shopkeeper.__path__, "shopkeeper."):
        if module.name.rsplit(".", 1)[-1] == "models":
            importlib.import_module(module.name)
    return Base.metadata


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_database(database: Database, revision: str = "head") -> None:
    async with database.engine.begin() as connection:
        await connection.run_sync(
            lambda sync_connection: command.upgrade(alembic_config(sync_connection), revision)
        )


def migrate(settings: Settings, revision: str = "head") -> None:
    async def run() -> None:
        database = Database(settings)
        try:
            await upgrade_database(database, revision)
        finally:
            await database.dispose()

    asyncio.run(run())
