"""Metric queries: range functions bucketed by ClickHouse where the pipeline allows it,
over the window's lines in Python where it does not, then aggregations and scalar operators."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.ast import Labels
from shopkeeper.logs.query.compiler import (
    STREAM_COLUMNS,
    Compiled,
    Params,
    bucket_counts_sql,
    compile_log_query,
    sample_rows_sql,
)
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.evaluate import (
    Buckets,
    Matrix,
    aggregate,
    binary_with_scalar,
    group_labels,
    range_over_buckets,
    range_over_samples,
)
from shopkeeper.logs.query.pipeline import (
    ERROR,
    ERROR_DETAILS,
    compile_pipeline,
    entry_from_row,
    label_filter_matches,
    sanitize,
    unwrap_value,
)
from shopkeeper.logs.query.results import Stats
from shopkeeper.logs.query.streams import too_many_lines
from shopkeeper.logs.store import LogStore

MAX_SAMPLE_LINES = 250_000
"""Lines a metric query whose pipeline needs Python may read (they are held at once)."""
MAX_FINE_BUCKETS = 200_000
MAX_BUCKET_ROWS = 1_000_000
"""Rows (series x time bucket) one metric statement may return."""


@dataclass
class MetricContext:
    """What a metric query is evaluated against: the store, the tenant, the step times."""

    store: LogStore
    tenant: str
    steps: list[int]
    stats: Stats


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
    ctx: MetricContext,
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
    ctx: MetricContext, node: ast.RangeAggregation, compiled: Compiled, params: Params
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
        raise QueryError(too_many_lines(MAX_SAMPLE_LINES))
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


async def evaluate(ctx: MetricContext, expr: ast.MetricExpr) -> Matrix | float:
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
        matrix = await evaluate(ctx, inner)
        if isinstance(matrix, float):
            raise QueryError(f"{expr.function} needs a vector, not a scalar")
        return aggregate(expr, matrix, ctx.steps)
    left = await evaluate(ctx, expr.left)
    right = await evaluate(ctx, expr.right)
    if isinstance(left, float) and isinstance(right, float):  # pragma: no cover - folded
        raise QueryError("a scalar-only expression")
    if isinstance(left, float):
        assert not isinstance(right, float)
        return binary_with_scalar(
            expr.op, right, left, scalar_left=True, return_bool=expr.return_bool
        )
    assert isinstance(right, float)
    return binary_with_scalar(expr.op, left, right, scalar_left=False, return_bool=expr.return_bool)
