"""Running LogQL against the store, the entry points of the Loki API: a log query answers
streams, a metric query a matrix (range) or a vector (instant). Every statement is bounded by
the tenant, a time range and a row limit."""

from __future__ import annotations

from shopkeeper.logs.metrics import timed_query
from shopkeeper.logs.query import ast
from shopkeeper.logs.query.ast import Labels
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.evaluate import Matrix, check_series_count
from shopkeeper.logs.query.labels import label_names, label_values, series, volume
from shopkeeper.logs.query.metrics import MetricContext, evaluate
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.query.results import Result, Stats, format_time, format_value
from shopkeeper.logs.query.streams import select_entries, streams_result
from shopkeeper.logs.store import LogStore

__all__ = ["label_names", "label_values", "query_instant", "query_range", "series", "volume"]

MAX_POINTS = 11_000
"""Loki's limit of points per series in a range query."""


@timed_query("query_range")
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
    value = await evaluate(MetricContext(store, tenant, steps, stats), expr)
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


@timed_query("query")
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
    value = await evaluate(MetricContext(store, tenant, [at], stats), expr)
    if isinstance(value, float):
        return Result("scalar", [format_time(at), format_value(value)], stats.as_loki())
    result = [
        {"metric": labels.as_dict(), "value": [format_time(at), format_value(series[at])]}
        for labels, series in sorted(value.items(), key=lambda item: item[0].items)
        if at in series
    ]
    return Result("vector", result, stats.as_loki())
