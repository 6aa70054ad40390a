"""Engine, sessions and the column types every domain shares, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import structlog
from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, Executable, MetaData, Table, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Dialect, Engine, Result, Row, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import NullPool, QueuePool
from sqlalchemy.types import TypeDecorator

from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)

# Stable constraint names, so Alembic migrations name the same thing on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite stores no offset, so it is restored on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")
"""A JSON column: JSONB on PostgreSQL (indexable), JSON text on SQLite."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """A UUIDv7 (RFC 9562): time-ordered, so primary-key indexes stay compact."""
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


class Database:
    """The engine and session factory of one process."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.database
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = {"echo": settings.database_echo}
        if self.is_sqlite:
            _ensure_sqlite_dir(self.url)
            options["connect_args"] = {"timeout": 30}
            if ":memory:" in self.url:
                options["poolclass"] = NullPool
        else:
            options.update(
                pool_size=settings.database_pool_size,
                max_overflow=settings.database_pool_size,
                pool_pre_ping=settings.database_pool_pre_ping,
                # The most recently used connection first: its prepared statements are warm,
                # and idle connections beyond the load can time out.
                pool_use_lifo=True,
                pool_recycle=1800,
            )
        self.engine: AsyncEngine = create_async_engine(self.url, **options)
        self._thread_reads: Engine | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            if ":memory:" not in self.url:  # another connection would see another database
                self._thread_reads = create_engine(
                    make_url(self.url).set(drivername="sqlite+pysqlite"),
                    connect_args={"timeout": 30, "check_same_thread": False},
                )
                _configure_sqlite_connections(self._thread_reads)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.autocommit: AsyncEngine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        """For a lone statement on PostgreSQL: no BEGIN and ROLLBACK round trips. Not for SQLite,
        whose connections issue their own `BEGIN IMMEDIATE` (see `_configure_sqlite`)."""
        no_begin = self.engine.execution_options(**{_NO_BEGIN: True})
        self.lone_reads: AsyncEngine = no_begin if self.is_sqlite else self.autocommit
        """For one read statement on either database, outside a transaction: on PostgreSQL no
        BEGIN and ROLLBACK round trips; on SQLite the statement's own implicit read transaction,
        not `BEGIN IMMEDIATE`: its write lock queued concurrent reads behind one another and
        behind the background jobs' writes (four ingest requests' key lookups took ~20 ms in
        turn under bench.logs_ingest, the INSERT waiting for all four). Never for writes."""

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one unit of work; anything not committed is rolled back on exit."""
        session = self.sessionmaker()
        try:
            yield session
        finally:
            await close_quietly(session)

    async def warm_up(self) -> int:
        """Open the pool's connections now, at start-up, and return how many are open. A pool
        otherwise grows under the first burst of traffic: each new PostgreSQL connection takes
        milliseconds to open and its first statements are slow, and fifteen of them opening at
        once stalled searches for up to 290 ms in the bench. Nothing to do for SQLite."""
        pool = self.engine.pool
        if self.is_sqlite or not isinstance(pool, QueuePool):
            return 0
        size = pool.size()
        async with contextlib.AsyncExitStack() as stack:
            await asyncio.gather(
                *(stack.enter_async_context(self.engine.connect()) for _ in range(size))
            )
        return int(size)

    async def read_first(
        self, statement: Executable, parameters: dict[str, Any] | None = None
    ) -> Row[Any] | None:
        """The first row of one read statement, outside a transaction (see `lone_reads`).

        On SQLite it runs on a worker thread over a plain pysqlite connection: one hand-off,
        where aiosqlite hands a statement to its connection's thread five times (cursor,
        execute, fetch, close, rollback), each waiting its turn on a busy event loop: an API-key
        lookup took 7-9 ms under `bench.logs_ingest` against ~1 ms idle. The read sees every
        committed write (WAL), so a revoked key still fails on its next use."""
        if self._thread_reads is None:
            async with self.lone_reads.connect() as connection:
                return (await connection.execute(statement, parameters)).first()
        return await asyncio.to_thread(_read_first, self._thread_reads, statement, parameters)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._thread_reads is not None:
            await asyncio.to_thread(self._thread_reads.dispose)


def _read_first(
    engine: Engine, statement: Executable, parameters: dict[str, Any] | None
) -> Row[Any] | None:
    with engine.connect() as connection:
        return connection.execute(statement, parameters).first()


def _ensure_sqlite_dir(url: str) -> None:
    path = url.split(":///", 1)[-1]
    if path and path != ":memory:":
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)


_NO_BEGIN = "shopkeeper_sqlite_no_begin"
"""Execution option: this SQLite connection issues no `BEGIN IMMEDIATE` (lone reads only)."""


def _configure_sqlite(engine: AsyncEngine) -> None:
    _configure_sqlite_connections(engine.sync_engine)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(_NO_BEGIN):
            return  # `Database.lone_reads`: autocommit (isolation_level None) reads alone
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
        # another writer committed in between; taking the write lock up front makes writers queue.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _configure_sqlite_connections(engine: Engine) -> None:
    """Every SQLite connection: WAL, foreign keys, a busy timeout; no implicit BEGIN (pysqlite's
    would be deferred; writers take `BEGIN IMMEDIATE`, reads on their own need none)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy issue BEGIN itself (`_configure_sqlite`) instead of pysqlite's implicit,
        # deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


async def close_quietly(session: AsyncSession) -> None:
    """Close `session`; if its connection died (the database restarted, a proxy cut it), the
    rollback that closing implies fails too. That failure is not the request's: its answer (often
    the 503 for the lost connection) is already chosen, and raising here, in the clean-up, turned
    it into a protocol error for the client. The connection is invalidated instead, so the pool
    replaces it."""
    try:
        await session.close()
    except (DBAPIError, OSError) as exc:
        log.warning("session_close_failed", error=type(exc).__name__)
        with contextlib.suppress(Exception):
            await session.invalidate()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    database: Database = request.app.state.db
    async with database.session() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def affected_rows(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE changed: how a conditional update tells who won a race.
    `session.execute` is typed as returning a plain `Result`; DML gives a `CursorResult`."""
    return int(cast(CursorResult[Any], result).rowcount)


def table_of(model: type[Base]) -> Table:
    """A model's Table, for Core statements that skip the unit of work on hot paths (the
    mapped `__table__` is typed as a plain FromClause)."""
    return cast(Table, model.__table__)


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def is_postgres(session: AsyncSession) -> bool:
    return dialect_name(session) == "postgresql"
