"""Refusing to start, clearly: a bad setting, an unreachable or missing database, or one that
is not migrated stops the CLI and `serve` with a line naming the problem and a line with the
fix, never a traceback. The same migration check backs `/health/ready`."""

from __future__ import annotations

import asyncio
import socket
from functools import lru_cache
from typing import Any

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.ext.asyncio import AsyncConnection

from shopkeeper.core.settings import ENV_PREFIX, Settings

CONNECT_TIMEOUT_SECONDS = 5.0
MIGRATE_FIX = "run `shopkeeper migrate` (with the same SHOPKEEPER_DATABASE_URL), then start again"


class StartupError(Exception):
    """Why the process cannot start, and what to do about it."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


class MigrationsPending(Exception):
    """The database's schema is behind the code's migrations."""


def settings_problem(exc: ValidationError) -> StartupError:
    """The first invalid setting, by its environment variable name."""
    error = exc.errors()[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["loc"]:
        name = ENV_PREFIX + str(error["loc"][0]).upper()
        value = error.get("input")
        secret = any(word in name for word in ("SECRET", "PASSWORD", "KEY"))
        shown = ""
        if isinstance(value, str | int | float) and not secret:
            shown = f" (got {_without_password(str(value))!r})"
        return StartupError(
            f"{name}: {message}{shown}", f"set {name} to a valid value (see docs/configuration.md)"
        )
    return StartupError(message, "see docs/configuration.md")


def _without_password(value: str) -> str:
    """`scheme://user:***@host/...`: a URL's password never reaches a terminal or a log."""
    scheme, separator, rest = value.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return value
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{location}"


@lru_cache
def migration_heads() -> frozenset[str]:
    from alembic.script import ScriptDirectory

    from shopkeeper.core.migrate import alembic_config

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def check_migrated(connection: AsyncConnection) -> None:
    """Raise MigrationsPending unless the database is at the code's migration head."""

    def current(sync_connection: Any) -> set[str]:
        from alembic.migration import MigrationContext

        return set(MigrationContext.configure(sync_connection).get_current_heads())

    applied = await connection.run_sync(current)
    if not applied:
        raise MigrationsPending("migrations pending: the database has none applied")
    if applied != migration_heads():
        raise MigrationsPending(
            f"migrations pending: the database is at {', '.join(sorted(applied))}, the code "
            f"needs {', '.join(sorted(migration_heads()))}"
        )


async def check_database(settings: Settings, *, migrated: bool = True) -> None:
    """Connect once and (with `migrated`) check the schema; raise StartupError on failure."""
    from shopkeeper.core.db import Database

    try:
        database = Database(settings)
    except (ArgumentError, NoSuchModuleError, ModuleNotFoundError, ValueError) as exc:
        raise StartupError(
            f"SHOPKEEPER_DATABASE_URL is not usable: {exc}",
            "use postgresql://user:password@host:5432/dbname or sqlite:///var/shopkeeper.db",
        ) from exc
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            async with database.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                if migrated:
                    await check_migrated(connection)
    except MigrationsPending as exc:
        raise StartupError(f"the database is not migrated ({exc})", MIGRATE_FIX) from exc
    except (TimeoutError, OSError, DBAPIError) as exc:
        raise connection_problem(settings.database, exc) from exc
    finally:
        await database.dispose()


def connection_problem(url: str, exc: BaseException) -> StartupError:
    """What went wrong reaching the database, in words an operator can act on."""
    parsed = make_url(url)
    where = f"{parsed.host or 'localhost'}:{parsed.port or 5432}"
    cause: BaseException = exc
    while isinstance(cause, DBAPIError) and cause.orig is not None:
        cause = cause.orig
    inner = cause.__cause__ or cause
    name = type(inner).__name__
    if name == "InvalidCatalogNameError":
        return StartupError(
            f"database {parsed.database!r} does not exist on {where}",
            f"create it (`createdb -h {parsed.host or 'localhost'} {parsed.database}`) or fix "
            "the name in SHOPKEEPER_DATABASE_URL",
        )
    if name in ("InvalidPasswordError", "InvalidAuthorizationSpecificationError"):
        return StartupError(
            f"the database at {where} refused user {parsed.username!r}: {inner}",
            "fix the user or password in SHOPKEEPER_DATABASE_URL",
        )
    if isinstance(inner, TimeoutError):
        return StartupError(
            f"no answer from the database at {where} within {CONNECT_TIMEOUT_SECONDS:.0f} s",
            "check the host and port in SHOPKEEPER_DATABASE_URL and that the server runs",
        )
    if isinstance(inner, socket.gaierror):
        return StartupError(
            f"cannot resolve the database host {parsed.host!r}",
            "fix the host in SHOPKEEPER_DATABASE_URL",
        )
    if isinstance(inner, OSError) and not url.startswith("sqlite"):
        return StartupError(
            f"cannot connect to the database at {where}: {inner.strerror or inner}",
            "check the host and port in SHOPKEEPER_DATABASE_URL and that PostgreSQL runs there",
        )
    return StartupError(
        f"the database did not accept the connection: {name}: {inner}"[:300],
        "check SHOPKEEPER_DATABASE_URL",
    )


def is_undefined_table(exc: BaseException) -> bool:
    """A statement failed because a table or column does not exist: migrations are pending."""
    orig = getattr(exc, "orig", None)
    codes = {getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None)}
    if codes & {"42P01", "42703"}:
        return True
    message = str(orig or exc)
    return "no such table" in message or "no such column" in message
