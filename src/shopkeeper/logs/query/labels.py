"""Loki's label, series and volume look-ups: one bounded statement each."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.compiler import (
    STREAM_COLUMNS,
    STREAM_LABELS_SQL,
    Params,
    compile_log_query,
    label_sql,
    where_clause,
)
from shopkeeper.logs.query.parser import parse_selector
from shopkeeper.logs.query.pipeline import (
    sanitize,
)
from shopkeeper.logs.query.results import format_time
from shopkeeper.logs.store import LogStore

MAX_LABEL_VALUES = 10_000


def _selector_conditions(selectors: Sequence[str], params: Params) -> list[str]:
    """One OR-ed condition for `match[]`-style selectors (empty: every stream)."""
    if not selectors:
        return []
    alternatives = []
    for text in selectors:
        matchers = parse_selector(text)
        compiled = compile_log_query(ast.LogQuery(matchers), params)
        alternatives.append("(" + " AND ".join(compiled.conditions) + ")")
    return ["(" + " OR ".join(alternatives) + ")"]


async def label_names(
    store: LogStore, *, tenant: str, start: int, end: int, query: str | None = None
) -> list[str]:
    params = Params()
    conditions = _selector_conditions([query] if query else [], params)
    present = ", ".join(f"max({name} != '') AS has_{name}" for name in STREAM_COLUMNS)
    rows = await store.query(
        f"SELECT groupUniqArrayArray(label_keys) AS keys, {present} "  # noqa: S608
        f"FROM {store.table} WHERE {where_clause(conditions)}",
        {**params.values, "tenant": tenant, "start": start, "end": end},
    )
    if not rows:
        return []
    row = rows[0]
    names = {name for name in STREAM_COLUMNS if row[f"has_{name}"]}
    names.update(sanitize(key) for key in row["keys"])
    return sorted(names)


async def label_values(
    store: LogStore, *, tenant: str, name: str, start: int, end: int, query: str | None
) -> list[str]:
    params = Params()
    conditions = _selector_conditions([query] if query else [], params)
    column = label_sql(name, params)
    not_empty = f"{column} != ''"
    rows = await store.query(
        f"SELECT DISTINCT {column} AS value FROM {store.table} "  # noqa: S608
        f"WHERE {where_clause([*conditions, not_empty])} "
        f"ORDER BY value LIMIT {MAX_LABEL_VALUES}",
        {**params.values, "tenant": tenant, "start": start, "end": end},
    )
    return [row["value"] for row in rows]


async def series(
    store: LogStore, *, tenant: str, selectors: Sequence[str], start: int, end: int
) -> list[dict[str, str]]:
    params = Params()
    conditions = _selector_conditions(selectors, params)
    columns = ", ".join(STREAM_COLUMNS)
    rows = await store.query(
        f"SELECT DISTINCT {columns}, {STREAM_LABELS_SQL} AS attrs "  # noqa: S608
        f"FROM {store.table} WHERE {where_clause(conditions)} LIMIT {MAX_LABEL_VALUES}",
        {**params.values, "tenant": tenant, "start": start, "end": end},
    )
    out = []
    for row in rows:
        labels = {name: row[name] for name in STREAM_COLUMNS if row[name]}
        labels.update({sanitize(k): v for k, v in row["attrs"].items() if v})
        out.append(dict(sorted(labels.items())))
    return out


async def volume(
    store: LogStore,
    *,
    tenant: str,
    selector: str,
    target_labels: Sequence[str],
    start: int,
    end: int,
    limit: int,
) -> list[dict[str, Any]]:
    """Loki's index/volume (aggregateBy=series): bytes of the matching lines, grouped by
    `target_labels` or else by the labels the selector names, largest first."""
    params = Params()
    matchers = parse_selector(selector)
    names = list(dict.fromkeys(target_labels or [m.name for m in matchers]))
    conditions = _selector_conditions([selector], params)
    keys = [f"{label_sql(name, params)} AS l{i}" for i, name in enumerate(names)]
    group = ", ".join(f"l{i}" for i in range(len(names)))
    rows = await store.query(
        f"SELECT {', '.join([*keys, 'sum(length(message)) AS bytes'])} "  # noqa: S608
        f"FROM {store.table} WHERE {where_clause(conditions)} "
        + (f"GROUP BY {group} " if names else "")
        + "ORDER BY bytes DESC LIMIT {limit:UInt64}",
        {**params.values, "tenant": tenant, "start": start, "end": end, "limit": limit},
    )
    at = format_time(end)
    out = []
    for row in rows:
        metric = {name: row[f"l{i}"] for i, name in enumerate(names) if row[f"l{i}"] != ""}
        if int(row["bytes"]):
            out.append({"metric": metric, "value": [at, str(int(row["bytes"]))]})
    return out
