"""Writes a unit of work sends together: one statement on PostgreSQL, one after another elsewhere.

Checkout ends with rows for five tables and two conditional updates, none of which it reads
back beyond how many rows an update touched. Sent one by one that is seven round trips, each
paying the driver, the socket and PostgreSQL's per-statement work. Each domain adds its own
writes to a `WriteBatch` instead, and `flush` sends them:

- on PostgreSQL as data-modifying CTEs of a single statement (`WITH w0 AS (INSERT ...), w1 AS
  (UPDATE ... RETURNING 1) SELECT (SELECT count(*) FROM w1)`). PostgreSQL runs every one,
  whether or not the outer query reads it; they all see the snapshot taken before the
  statement, so no write may depend on another's rows, and foreign keys are checked at the end
  of the statement, so an order and its lines can go in together. Multi-row inserts travel as
  one array per column through `unnest`, so the statement's text does not depend on the number
  of rows and is prepared once per connection.
- elsewhere (SQLite, which has no data-modifying CTEs) as the same writes in order.

A counted write states how many rows it must touch and what to raise otherwise; the caller's
transaction then rolls back, so a short count undoes the whole batch (all or nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import JSON, Table, TextClause, bindparam, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import BindParameter
from sqlalchemy.types import TypeDecorator, TypeEngine

from shopkeeper.core.db import affected_rows, is_postgres

MismatchError = Callable[[], Exception]


@dataclass(frozen=True, slots=True)
class _Insert:
    table: Table
    rows: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class _Change:
    statement: TextClause
    params: Mapping[str, Any]
    expected_rows: int | None
    mismatch: MismatchError | None


@dataclass
class WriteBatch:
    """Writes collected during a unit of work, sent by `flush` in the order they were added."""

    _writes: list[_Insert | _Change] = field(default_factory=list)

    def insert(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        """INSERT `rows` into `table`. Every row names the same columns, including each one
        that has a Python-side default (the batch applies none). Rows for a table and columns
        already in the batch join that earlier insert."""
        if not rows:
            return
        columns = tuple(rows[0])
        for index, write in enumerate(self._writes):
            if not isinstance(write, _Insert) or write.table is not table:
                continue
            if tuple(write.rows[0]) == columns:
                self._writes[index] = _Insert(table, [*write.rows, *rows])
                return
        self._writes.append(_Insert(table, rows))

    def change(
        self,
        statement: TextClause,
        params: Mapping[str, Any],
        *,
        expected_rows: int | None = None,
        mismatch: MismatchError | None = None,
    ) -> None:
        """A prebuilt UPDATE, DELETE or INSERT without RETURNING, built once at import (each
        statement object is part of a cached shape for the life of the process). Its bind
        parameters must be typed and named apart from every other write's in the same batch. With
        `expected_rows`, `flush` raises `mismatch()` unless exactly that many rows changed."""
        if expected_rows is not None and mismatch is None:
            raise ValueError("a counted change needs the error to raise on a mismatch")
        self._writes.append(_Change(statement, params, expected_rows, mismatch))

    async def flush(self, session: AsyncSession) -> None:
        """Send every write in the session's transaction (which the caller commits)."""
        writes, self._writes = self._writes, []
        if not writes:
            return
        shape = tuple(_shape_of(write) for write in writes)
        if shape not in _CHECKED:
            # Once per shape, on both databases, so a mistake shows on SQLite too.
            _check(writes)
            _CHECKED.add(shape)
        if is_postgres(session):
            await _flush_postgres(session, shape, writes)
        else:
            await _flush_one_by_one(session, writes)


async def _flush_one_by_one(session: AsyncSession, writes: Sequence[_Insert | _Change]) -> None:
    for write in writes:
        if isinstance(write, _Insert):
            await session.execute(insert(write.table), list(write.rows))
            continue
        result = await session.execute(write.statement, dict(write.params))
        _check_count(write, affected_rows(result))


async def _flush_postgres(
    session: AsyncSession, shape: tuple[_Shape, ...], writes: Sequence[_Insert | _Change]
) -> None:
    statement = _COMBINED.get(shape)
    if statement is None:
        statement = _COMBINED[shape] = _combine(writes)
    params: dict[str, Any] = {}
    for index, write in enumerate(writes):
        if isinstance(write, _Insert):
            params.update(_column_arrays(index, write))
        else:
            params.update(write.params)
    counts = (await session.execute(statement, params)).one()
    counted = [
        write for write in writes if isinstance(write, _Change) and write.expected_rows is not None
    ]
    for write, count in zip(counted, counts[1:], strict=True):
        _check_count(write, int(count))


def _check_count(write: _Insert | _Change, count: int) -> None:
    if isinstance(write, _Change) and write.expected_rows not in (None, count):
        assert write.mismatch is not None
        raise write.mismatch()


# A batch's statement depends only on its shape (which tables with which columns, which
# prebuilt changes, in which order), so each shape is built once per process.
_Shape = tuple[str, Table, tuple[str, ...]] | tuple[str, TextClause]
_COMBINED: dict[tuple[_Shape, ...], TextClause] = {}
_CHECKED: set[tuple[_Shape, ...]] = set()


def _shape_of(write: _Insert | _Change) -> _Shape:
    if isinstance(write, _Insert):
        return ("insert", write.table, tuple(write.rows[0]))
    return ("change", write.statement)


def _check(writes: Sequence[_Insert | _Change]) -> None:
    """Inserts name every column with a Python-side default; changes share no parameter."""
    seen: set[str] = set()
    for write in writes:
        if isinstance(write, _Insert):
            missing = [
                column.name
                for column in write.table.columns
                if column.name not in write.rows[0]
                and getattr(column.default, "arg", None) is not None
            ]
            if missing:
                raise ValueError(
                    f"rows for {write.table.name} must give {', '.join(missing)} "
                    "(a batch applies no defaults)"
                )
            continue
        for key in write.statement._bindparams:
            if key in seen:
                raise ValueError(f"bind parameter {key!r} is used by two writes")
            seen.add(key)


def _combine(writes: Sequence[_Insert | _Change]) -> TextClause:
    parts: list[str] = []
    counts: list[str] = []
    binds: list[BindParameter[Any]] = []
    for index, write in enumerate(writes):
        name = f"w{index}"
        if isinstance(write, _Insert):
            sql, params = _unnest_insert(index, write.table, tuple(write.rows[0]))
        else:
            sql, params = write.statement.text.strip(), list(write.statement._bindparams.values())
            if write.expected_rows is not None:
                sql += " RETURNING 1"
                counts.append(f"(SELECT count(*) FROM {name})")  # noqa: S608 (our own name)
        binds.extend(params)
        parts.append(f"{name} AS ({sql})")
    select_list = ", ".join(["1", *counts])
    # Built from our own metadata and prebuilt statements; values travel as bind parameters.
    combined = f"WITH {', '.join(parts)} SELECT {select_list}"
    return text(combined).bindparams(*binds)


def _unnest_insert(
    index: int, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[BindParameter[Any]]]:
    """`INSERT INTO t (a, b) SELECT a, b::jsonb FROM unnest(:w0_a, :w0_b) AS r(a, b)`."""
    params: list[BindParameter[Any]] = []
    selected: list[str] = []
    for column_name in columns:
        element, is_json = _array_element(table.c[column_name].type)
        param = bindparam(f"w{index}_{column_name}", type_=postgresql.ARRAY(element))
        params.append(param)
        selected.append(f'r."{column_name}"::jsonb' if is_json else f'r."{column_name}"')
    names = ", ".join(f'"{name}"' for name in columns)
    arrays = ", ".join(f":{param.key}" for param in params)
    sql = (
        f'INSERT INTO "{table.name}" ({names}) SELECT {", ".join(selected)} '  # noqa: S608 (our metadata)
        f"FROM unnest({arrays}) AS r({names})"
    )
    return sql, params


def _array_element(column_type: TypeEngine[Any]) -> tuple[TypeEngine[Any], bool]:
    """The array element type a column's values travel as; JSON travels as text."""
    if isinstance(column_type, JSON):
        return postgresql.TEXT(), True
    if isinstance(column_type, TypeDecorator):
        # The implementation type, whose values asyncpg encodes itself; the decorators in use
        # (UTCDateTime) only check values that checkout builds from `utcnow()` anyway.
        return column_type.impl_instance, False
    return column_type, False


def _column_arrays(index: int, write: _Insert) -> dict[str, list[Any]]:
    arrays: dict[str, list[Any]] = {}
    for column_name in write.rows[0]:
        values = [row[column_name] for row in write.rows]
        if isinstance(write.table.c[column_name].type, JSON):
            values = [None if value is None else orjson.dumps(value).decode() for value in values]
        arrays[f"w{index}_{column_name}"] = values
    return arrays
