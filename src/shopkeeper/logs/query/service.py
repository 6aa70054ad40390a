"""Running LogQL against the store: log queries (streams) and metric queries (matrix/vector),
plus the label and series look-ups of Loki's API. Each statement is bounded by the tenant, a
time range and a row limit."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.ast import Labels
from shopkeeper.logs.query.compiler import (
    STREAM_COLUMNS,
    STREAM_LABELS_SQL,
    Compiled,
    Params,
    bucket_counts_sql,
    compile_log_query,
    label_sql,
    log_rows_sql,
    sample_rows_sql,
    where_clause,
)
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.evaluate import (
    Buckets,
    Matrix,
    aggregate,
    binary_with_scalar,
    check_series_count,
    group_labels,
    range_over_buckets,
    range_over_samples,
)
from shopkeeper.logs.query.parser import parse, parse_selector
from shopkeeper.logs.query.pipeline import (
    ERROR,
    ERROR_DETAILS,
    Entry,
    compile_pipeline,
    entry_from_row,
    label_filter_matches,
    sanitize,
    unwrap_value,
)
from shopkeeper.logs.store import LogStore

MAX_SCAN_LINES = 1_000_000
"""Lines a log query may page out of SQL into the Python pipeline before it is refused."""
MAX_SAMPLE_LINES = 250_000
"""Lines a metric query whose pipeline needs Python may read (they are held at once)."""
MAX_FINE_BUCKETS = 200_000
MAX_BUCKET_ROWS = 1_000_000
"""Rows (series x time bucket) one metric statement may return."""
MAX_POINTS = 11_000
"""Loki's limit of points per series in a range query."""
MAX_LABEL_VALUES = 10_000


@dataclass
class Stats:
    started: float = field(default_factory=time.perf_counter)
    lines: int = 0
    bytes: int = 0
    entries: int = 0

    def as_loki(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        summary = {
            "bytesProcessedPerSecond": int(self.bytes / elapsed) if elapsed > 0 else 0,
            "linesProcessedPerSecond": int(self.lines / elapsed) if elapsed > 0 else 0,
            "totalBytesProcessed": self.bytes,
            "totalLinesProcessed": self.lines,
            "execTime": elapsed,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": self.entries,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": self.entries,
            "totalStructuredMetadataBytesProcessed": 0,
        }
        return {"summary": summary, "querier": {"store": {}}, "ingester": {}, "cache": {}}


@dataclass(frozen=True, slots=True)
class Result:
    result_type: str  # "streams" | "matrix" | "vector" | "scalar"
    result: Any
    stats: dict[str, Any]

    def as_loki(self) -> dict[str, Any]:
        data: dict[str, Any] = {"resultType": self.result_type, "result": self.result}
        if self.result_type == "streams":
            # Labels always come categorized (stream labels apart from structured metadata and
            # parsed labels, in a value's third element); Loki 3 says so with this flag.
            data["encodingFlags"] = ["categorize-labels"]
        data["stats"] = self.stats
        return {"status": "success", "data": data}


@dataclass
class _Context:
    store: LogStore
    tenant: str
    steps: list[int]
    stats: Stats


# -- log queries -------------------------------------------------------------------------------


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
            raise QueryError(_too_many_lines())


def _too_many_lines(limit: int = MAX_SCAN_LINES) -> str:
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


# -- metric queries ----------------------------------------------------------------------------


def _sql_countable(node: ast.RangeAggregation, compiled: Compiled) -> bool:
    return (
        node.function in ("count_over_time", "rate", "bytes_over_time", "bytes_rate")
        and not compiled.residual
    )


def _bucket_width(range_ns: int, steps: Sequence[int]) -> int:
    width = range_ns
    for a, b in itertools.pairwise(steps):
        width = math.gcd(width, b - a)
    return width


async def _range_in_sql(
    ctx: _Context,
    node: ast.RangeAggregation,
    compiled: Compiled,
    params: Params,
    group_by: Sequence[str] | None,
) -> Matrix:
    width = _bucket_width(node.range_ns, ctx.steps)
    lo = ctx.steps[0] - node.range_ns
    hi = ctx.steps[-1]
    if (hi - lo) // width > MAX_FINE_BUCKETS:
        raise QueryError(
            "the step and the range share too fine a time unit; make the step a multiple "
            "of the range or the range a multiple of the step"
        )
    origin = lo - width  # every line of (lo, hi] falls in a bucket with a positive index
    with_bytes = node.function in ("bytes_over_time", "bytes_rate")
    sql = bucket_counts_sql(ctx.store.table, compiled, group_by=group_by, with_bytes=with_bytes)
    rows = await ctx.store.query(
        sql,
        {
            **params.values,
            "tenant": ctx.tenant,
            "start": lo + 1,
            "end": hi + 1,
            "origin": origin,
            "width": width,
            "limit": MAX_BUCKET_ROWS + 1,
        },
    )
    if len(rows) > MAX_BUCKET_ROWS:
        raise QueryError(
            f"the query would return more than {MAX_BUCKET_ROWS:,} series-buckets; aggregate "
            "with sum by (...), narrow the selector or use a coarser step"
        )
    buckets: dict[Labels, list[tuple[int, float]]] = {}
    for row in rows:
        ctx.stats.lines += int(row["lines"])
        if group_by is None:
            labels = {name: row[name] for name in STREAM_COLUMNS}
            labels.update({sanitize(k): v for k, v in row["stream_attributes"].items()})
        else:
            labels = {name: row[name] for name in group_by}
        key = Labels.of({k: v for k, v in labels.items() if v != ""})
        value = float(row["bytes"] if with_bytes else row["lines"])
        buckets.setdefault(key, []).append((int(row["bucket"]), value))
    return range_over_buckets(node, Buckets(origin, width), buckets, ctx.steps)


async def _range_in_python(
    ctx: _Context, node: ast.RangeAggregation, compiled: Compiled, params: Params
) -> Matrix:
    lo = ctx.steps[0] - node.range_ns
    hi = ctx.steps[-1]
    rows = await ctx.store.query(
        sample_rows_sql(ctx.store.table, compiled),
        {
            **params.values,
            "tenant": ctx.tenant,
            "start": lo + 1,
            "end": hi + 1,
            "limit": MAX_SAMPLE_LINES + 1,
        },
    )
    if len(rows) > MAX_SAMPLE_LINES:
        raise QueryError(_too_many_lines(MAX_SAMPLE_LINES))
    pipeline = compile_pipeline(compiled.residual)
    samples: dict[Labels, list[tuple[int, float]]] = {}
    for row in rows:
        ctx.stats.lines += 1
        ctx.stats.bytes += len(row["message"])
        entry = entry_from_row(row)
        if not pipeline.run(entry):
            continue
        value: float | None
        if node.unwrap is not None:
            value = unwrap_value(node.unwrap, entry)
            if not all(label_filter_matches(f.expr, entry) for f in node.unwrap.post_filters):
                continue
            entry.delete(node.unwrap.label)
        elif node.function in ("bytes_over_time", "bytes_rate"):
            value = float(len(entry.line.encode()))
        else:
            value = 1.0
        labels = entry.series_labels()
        if ERROR in labels:
            raise QueryError(_pipeline_error(labels))
        if value is None:  # pragma: no cover - an unwrap failure always sets __error__
            continue
        key = Labels.of(labels)
        if node.grouping is not None:
            key = group_labels(key, node.grouping)
        samples.setdefault(key, []).append((entry.ts, value))
    return range_over_samples(node, samples, ctx.steps)


def _pipeline_error(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in (ERROR, ERROR_DETAILS)}
    series = "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"
    return (
        f"pipeline error: '{labels[ERROR]}' for series: '{series}'.\n"
        "Use a label filter to intentionally skip this error. "
        f'(e.g | __error__!="{labels[ERROR]}").\n'
        'To skip all potential errors you can match empty errors.(e.g __error__="")\n'
        "The label filter can also be specified after unwrap. "
        '(e.g | unwrap latency | __error__="" )'
    )


def _grouping_labels(node: ast.VectorAggregation) -> tuple[str, ...]:
    return node.grouping.labels if node.grouping else ()


async def _evaluate(ctx: _Context, expr: ast.MetricExpr) -> Matrix | float:
    if isinstance(expr, ast.Scalar):
        return expr.value
    if isinstance(expr, ast.RangeAggregation):
        params = Params()
        compiled = compile_log_query(expr.query, params)
        if _sql_countable(expr, compiled):
            return await _range_in_sql(ctx, expr, compiled, params, None)
        return await _range_in_python(ctx, expr, compiled, params)
    if isinstance(expr, ast.VectorAggregation):
        inner = expr.inner
        if (
            expr.function == "sum"
            and isinstance(inner, ast.RangeAggregation)
            and (expr.grouping is None or not expr.grouping.without)
            and all(
                name in STREAM_COLUMNS for name in (expr.grouping.labels if expr.grouping else ())
            )
        ):
            params = Params()
            compiled = compile_log_query(inner.query, params)
            if _sql_countable(inner, compiled):
                by = expr.grouping.labels if expr.grouping else ()
                return await _range_in_sql(ctx, inner, compiled, params, by)
        matrix = await _evaluate(ctx, inner)
        if isinstance(matrix, float):
            raise QueryError(f"{expr.function} needs a vector, not a scalar")
        return aggregate(expr, matrix, ctx.steps)
    left = await _evaluate(ctx, expr.left)
    right = await _evaluate(ctx, expr.right)
    if isinstance(left, float) and isinstance(right, float):  # pragma: no cover - folded
        raise QueryError("a scalar-only expression")
    if isinstance(left, float):
        assert not isinstance(right, float)
        return binary_with_scalar(
            expr.op, right, left, scalar_left=True, return_bool=expr.return_bool
        )
    assert isinstance(right, float)
    return binary_with_scalar(expr.op, left, right, scalar_left=False, return_bool=expr.return_bool)


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64), as Loki prints sample values."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    return text


def format_time(ns: int) -> float | int:
    seconds = ns / 1e9
    rounded = round(seconds, 3)
    return int(rounded) if rounded == int(rounded) else rounded


# -- entry points ------------------------------------------------------------------------------


async def query_range(
    store: LogStore,
    *,
    tenant: str,
    query: str,
    start: int,
    end: int,
    step: int,
    limit: int,
    backward: bool,
) -> Result:
    expr = parse(query)
    stats = Stats()
    if isinstance(expr, ast.LogQuery):
        entries = await select_entries(
            store,
            tenant=tenant,
            query=expr,
            start=start,
            end=end,
            limit=limit,
            backward=backward,
            stats=stats,
        )
        stats.entries = len(entries)
        return Result("streams", streams_result(entries, backward=backward), stats.as_loki())
    if (end - start) // step + 1 > MAX_POINTS:
        raise QueryError(
            f"exceeded maximum resolution of {MAX_POINTS:,} points per timeseries. "
            "Try increasing the value of the step parameter"
        )
    steps = list(range(start, end + 1, step))
    value = await _evaluate(_Context(store, tenant, steps, stats), expr)
    if isinstance(value, float):
        matrix: Matrix = {Labels(): {t: value for t in steps}}
    else:
        matrix = value
    check_series_count(matrix)
    result = [
        {
            "metric": labels.as_dict(),
            "values": [[format_time(t), format_value(v)] for t, v in sorted(series.items())],
        }
        for labels, series in sorted(matrix.items(), key=lambda item: item[0].items)
    ]
    return Result("matrix", result, stats.as_loki())


async def query_instant(
    store: LogStore, *, tenant: str, query: str, at: int, limit: int, backward: bool
) -> Result:
    expr = parse(query)
    if isinstance(expr, ast.LogQuery):
        raise QueryError(
            "log queries are not supported as an instant query type, please change your "
            "query to a range query type"
        )
    stats = Stats()
    value = await _evaluate(_Context(store, tenant, [at], stats), expr)
    if isinstance(value, float):
        return Result("scalar", [format_time(at), format_value(value)], stats.as_loki())
    result = [
        {"metric": labels.as_dict(), "value": [format_time(at), format_value(series[at])]}
        for labels, series in sorted(value.items(), key=lambda item: item[0].items)
        if at in series
    ]
    return Result("vector", result, stats.as_loki())


# -- labels and series -------------------------------------------------------------------------


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
