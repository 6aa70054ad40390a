"""Metric arithmetic on series in Python: range functions over windows of samples, vector
aggregations, and binary operators with scalars. The inputs are small (buckets or samples
SQL has already grouped and bounded); the rules are Loki's (and Prometheus')."""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.ast import Labels
from shopkeeper.logs.query.errors import QueryError

Series = dict[int, float]  # step timestamp (ns) -> value
Matrix = dict[Labels, Series]
MAX_SERIES = 500
"""Loki's default `max_query_series`: more series than this is an error, not a cut."""


def apply_scalar_op(op: str, left: float, right: float, *, return_bool: bool) -> float | None:
    """`left op right`; for a comparison, 1/0 with `bool`, else the kept value or None."""
    if op in ("==", "!=", ">", ">=", "<", "<="):
        result = {
            "==": left == right,
            "!=": left != right,
            ">": left > right,
            ">=": left >= right,
            "<": left < right,
            "<=": left <= right,
        }[op]
        if return_bool:
            return 1.0 if result else 0.0
        return left if result else None
    try:
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op == "/":
            if right == 0:
                return math.nan if left == 0 or math.isnan(left) else math.copysign(math.inf, left)
            return left / right
        if op == "%":
            return math.fmod(left, right) if right != 0 else math.nan
        if op == "^":
            return float(left**right)
    except (OverflowError, ZeroDivisionError):
        return math.inf
    raise QueryError(f"unknown operator {op}")


def binary_with_scalar(
    op: str, matrix: Matrix, scalar: float, *, scalar_left: bool, return_bool: bool
) -> Matrix:
    out: Matrix = {}
    comparison = op in ("==", "!=", ">", ">=", "<", "<=")
    for labels, series in matrix.items():
        points: Series = {}
        for t, v in series.items():
            left, right = (scalar, v) if scalar_left else (v, scalar)
            result = apply_scalar_op(op, left, right, return_bool=return_bool)
            if result is None:
                continue
            # A filtering comparison keeps the vector's own value, whichever side it is on.
            points[t] = v if comparison and not return_bool else result
        if points:
            out[labels] = points
    return out


def quantile(q: float, values: Sequence[float]) -> float:
    """Prometheus' quantile: linear interpolation between the closest ranks."""
    if not values:
        return math.nan
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    lower = math.floor(rank)
    upper = min(lower + 1, len(ordered) - 1)
    weight = rank - lower
    return ordered[lower] * (1 - weight) + ordered[upper] * weight


def _window_function(
    name: str, range_s: float, param: float | None
) -> Callable[[list[float]], float]:
    if name in ("count_over_time",):
        return lambda values: float(len(values))
    if name == "rate":
        return lambda values: len(values) / range_s
    if name in ("bytes_over_time", "sum_over_time"):
        return lambda values: float(math.fsum(values))
    if name == "bytes_rate":
        return lambda values: math.fsum(values) / range_s
    if name == "avg_over_time":
        return lambda values: math.fsum(values) / len(values)
    if name == "max_over_time":
        return max
    if name == "min_over_time":
        return min
    if name == "quantile_over_time":
        return lambda values: quantile(param if param is not None else 0.5, values)
    raise QueryError(f"unknown range function {name}")  # pragma: no cover


def range_over_samples(
    node: ast.RangeAggregation, samples: dict[Labels, list[tuple[int, float]]], steps: Sequence[int]
) -> Matrix:
    """Evaluates a range function at each step over the samples in (t - range, t]."""
    function = _window_function(node.function, node.range_ns / 1e9, node.param)
    out: Matrix = {}
    for labels, points in samples.items():
        points.sort(key=lambda p: p[0])
        times = [p[0] for p in points]
        series: Series = {}
        for t in steps:
            lo = bisect.bisect_right(times, t - node.range_ns)
            hi = bisect.bisect_right(times, t)
            if hi > lo:
                series[t] = function([p[1] for p in points[lo:hi]])
        if series:
            out[labels] = series
    check_series_count(out)
    return out


@dataclass(frozen=True, slots=True)
class Buckets:
    """Per-series counts in fine buckets from SQL: bucket j is (origin+(j-1)w, origin+jw]."""

    origin: int
    width: int


def range_over_buckets(
    node: ast.RangeAggregation,
    buckets: Buckets,
    rows: dict[Labels, list[tuple[int, float]]],
    steps: Sequence[int],
) -> Matrix:
    """count/bytes per window from bucket sums: a window is a whole number of buckets."""
    range_s = node.range_ns / 1e9
    per_rate = node.function in ("rate", "bytes_rate")
    out: Matrix = {}
    for labels, points in rows.items():
        points.sort(key=lambda p: p[0])
        indexes = [p[0] for p in points]
        cumulative = [0.0]
        for _, value in points:
            cumulative.append(cumulative[-1] + value)
        series: Series = {}
        for t in steps:
            last = (t - buckets.origin) // buckets.width
            first = (t - node.range_ns - buckets.origin) // buckets.width + 1
            lo = bisect.bisect_left(indexes, first)
            hi = bisect.bisect_right(indexes, last)
            if hi > lo:
                total = cumulative[hi] - cumulative[lo]
                series[t] = total / range_s if per_rate else total
        if series:
            out[labels] = series
    check_series_count(out)
    return out


def check_series_count(matrix: Matrix) -> None:
    if len(matrix) > MAX_SERIES:
        raise QueryError(
            f"maximum of series ({MAX_SERIES}) reached for a single query; "
            "consider aggregating with sum by (...) or narrowing the selector"
        )


def group_labels(labels: Labels, grouping: ast.Grouping | None) -> Labels:
    if grouping is None:
        return Labels()
    if grouping.without:
        return Labels(tuple((k, v) for k, v in labels.items if k not in grouping.labels))
    return Labels(tuple((k, v) for k, v in labels.items if k in grouping.labels))


def _avg(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _count(values: list[float]) -> float:
    return float(len(values))


_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "sum": math.fsum,
    "avg": _avg,
    "min": min,
    "max": max,
    "count": _count,
}


def aggregate(node: ast.VectorAggregation, matrix: Matrix, steps: Iterable[int]) -> Matrix:
    if node.function in ("topk", "bottomk"):
        return _top_k(node, matrix, steps)
    groups: dict[Labels, dict[int, list[float]]] = {}
    for labels, series in matrix.items():
        key = group_labels(labels, node.grouping)
        target = groups.setdefault(key, {})
        for t, v in series.items():
            target.setdefault(t, []).append(v)
    reduce = _REDUCERS[node.function]
    return {
        key: {t: reduce(values) for t, values in sorted(points.items())}
        for key, points in groups.items()
    }


def _top_k(node: ast.VectorAggregation, matrix: Matrix, steps: Iterable[int]) -> Matrix:
    k = int(node.param or 1)
    out: Matrix = {}
    for t in steps:
        groups: dict[Labels, list[tuple[float, Labels]]] = {}
        for labels, series in matrix.items():
            if t in series:
                key = group_labels(labels, node.grouping)
                groups.setdefault(key, []).append((series[t], labels))
        for members in groups.values():
            members.sort(
                key=lambda m: (math.isnan(m[0]), -m[0] if node.function == "topk" else m[0])
            )
            for value, labels in members[:k]:
                out.setdefault(labels, {})[t] = value
    return out
