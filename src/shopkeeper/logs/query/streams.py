"""Log queries: the lines of a time range after the pipeline, newest or oldest first, and
their grouping into Loki's streams."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.ast import Labels
from shopkeeper.logs.query.compiler import (
    Params,
    compile_log_query,
    log_rows_sql,
)
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.pipeline import (
    Entry,
    compile_pipeline,
    entry_from_row,
)
from shopkeeper.logs.query.results import Stats
from shopkeeper.logs.store import LogStore

MAX_SCAN_LINES = 1_000_000
"""Lines a log query may page out of SQL into the Python pipeline before it is refused."""


async def select_entries(
    store: LogStore,
    *,
    tenant: str,
    query: ast.LogQuery,
    start: int,
    end: int,
    limit: int,
    backward: bool,
    stats: Stats,
) -> list[Entry]:
    """The first `limit` entries of [start, end) in the given direction after the pipeline."""
    params = Params()
    compiled = compile_log_query(query, params)
    pipeline = compile_pipeline(compiled.residual)
    sql = log_rows_sql(store.table, compiled, backward=backward)
    page = limit if not compiled.filters_in_python else max(limit * 4, 1000)
    out: list[Entry] = []
    offset = 0
    while True:
        rows = await store.query(
            sql,
            {
                **params.values,
                "tenant": tenant,
                "start": start,
                "end": end,
                "limit": page,
                "offset": offset,
            },
        )
        for row in rows:
            stats.lines += 1
            stats.bytes += len(row["message"])
            entry = entry_from_row(row)
            if pipeline.run(entry):
                out.append(entry)
                if len(out) >= limit:
                    return out
        if len(rows) < page:
            return out
        offset += page
        if offset >= MAX_SCAN_LINES:
            raise QueryError(too_many_lines())


def too_many_lines(limit: int = MAX_SCAN_LINES) -> str:
    return (
        f"the query would process more than {limit:,} lines in its pipeline; "
        'add a line filter (|= "word") or narrow the time range'
    )


def streams_result(entries: Sequence[Entry], *, backward: bool) -> list[dict[str, Any]]:
    streams: dict[Labels, list[list[Any]]] = {}
    for entry in entries:
        value: list[Any] = [str(entry.ts), entry.line]
        extra: dict[str, dict[str, str]] = {}
        if entry.metadata:
            extra["structuredMetadata"] = entry.metadata
        if entry.parsed:
            extra["parsed"] = entry.parsed
        if extra:
            value.append(extra)
        streams.setdefault(Labels.of(entry.stream), []).append(value)
    for values in streams.values():
        values.sort(key=lambda v: int(v[0]), reverse=backward)
    return [{"stream": labels.as_dict(), "values": values} for labels, values in streams.items()]
