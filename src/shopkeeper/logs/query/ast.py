"""The LogQL syntax tree: what the parser builds and the compiler and evaluator read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MatchOp = Literal["=", "!=", "=~", "!~"]
LineOp = Literal["|=", "!=", "|~", "!~"]
CompareOp = Literal["==", "!=", ">", ">=", "<", "<=", "=", "=~", "!~"]
ArithOp = Literal["+", "-", "*", "/", "%", "^"]
ComparisonOp = Literal["==", "!=", ">", ">=", "<", "<="]


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: MatchOp
    value: str


@dataclass(frozen=True, slots=True)
class LineFilter:
    op: LineOp
    value: str


@dataclass(frozen=True, slots=True)
class JsonParser:
    # `| json a="x.y", b` extracts only those; empty means everything, flattened with `_`.
    extractions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LogfmtParser:
    extractions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RegexpParser:
    pattern: str


@dataclass(frozen=True, slots=True)
class PatternParser:
    pattern: str


@dataclass(frozen=True, slots=True)
class StringLabelFilter:
    name: str
    op: MatchOp
    value: str


@dataclass(frozen=True, slots=True)
class NumberLabelFilter:
    name: str
    op: ComparisonOp
    value: float
    # "duration" compares the label parsed as a Go duration, in seconds; "bytes" as a size.
    kind: Literal["number", "duration", "bytes"] = "number"


@dataclass(frozen=True, slots=True)
class AndFilter:
    left: LabelFilterExpr
    right: LabelFilterExpr


@dataclass(frozen=True, slots=True)
class OrFilter:
    left: LabelFilterExpr
    right: LabelFilterExpr


LabelFilterExpr = StringLabelFilter | NumberLabelFilter | AndFilter | OrFilter


@dataclass(frozen=True, slots=True)
class LabelFilter:
    expr: LabelFilterExpr


@dataclass(frozen=True, slots=True)
class LineFormat:
    template: str


@dataclass(frozen=True, slots=True)
class LabelFormat:
    # (destination, source label or template, is_template)
    assignments: tuple[tuple[str, str, bool], ...]


@dataclass(frozen=True, slots=True)
class Drop:
    names: tuple[str, ...]
    matchers: tuple[Matcher, ...] = ()


@dataclass(frozen=True, slots=True)
class Keep:
    names: tuple[str, ...]
    matchers: tuple[Matcher, ...] = ()


Stage = (
    LineFilter
    | JsonParser
    | LogfmtParser
    | RegexpParser
    | PatternParser
    | LabelFilter
    | LineFormat
    | LabelFormat
    | Drop
    | Keep
)


@dataclass(frozen=True, slots=True)
class LogQuery:
    matchers: tuple[Matcher, ...]
    stages: tuple[Stage, ...] = ()


UnwrapConversion = Literal["", "duration", "duration_seconds", "bytes"]


@dataclass(frozen=True, slots=True)
class Unwrap:
    label: str
    conversion: UnwrapConversion = ""
    post_filters: tuple[LabelFilter, ...] = ()


@dataclass(frozen=True, slots=True)
class Grouping:
    without: bool
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RangeAggregation:
    function: str
    query: LogQuery
    range_ns: int
    unwrap: Unwrap | None = None
    param: float | None = None  # quantile_over_time's φ
    grouping: Grouping | None = None


@dataclass(frozen=True, slots=True)
class VectorAggregation:
    function: str
    inner: MetricExpr
    grouping: Grouping | None = None
    param: float | None = None  # topk/bottomk's k


@dataclass(frozen=True, slots=True)
class Scalar:
    value: float


@dataclass(frozen=True, slots=True)
class BinaryOp:
    op: str
    left: MetricExpr
    right: MetricExpr
    return_bool: bool = False


MetricExpr = RangeAggregation | VectorAggregation | Scalar | BinaryOp
Expr = LogQuery | MetricExpr

RANGE_FUNCTIONS = frozenset(
    {
        "count_over_time",
        "rate",
        "bytes_over_time",
        "bytes_rate",
        "sum_over_time",
        "avg_over_time",
        "max_over_time",
        "min_over_time",
        "quantile_over_time",
    }
)
UNWRAP_FUNCTIONS = frozenset(
    {"sum_over_time", "avg_over_time", "max_over_time", "min_over_time", "quantile_over_time"}
)
VECTOR_FUNCTIONS = frozenset({"sum", "avg", "min", "max", "count", "topk", "bottomk"})

# Known to Loki, refused here by name.
UNSUPPORTED_FUNCTIONS = frozenset(
    {
        "stddev_over_time",
        "stdvar_over_time",
        "first_over_time",
        "last_over_time",
        "absent_over_time",
        "rate_counter",
        "stddev",
        "stdvar",
        "sort",
        "sort_desc",
        "label_replace",
        "vector",
        "absent",
        "approx_topk",
    }
)


@dataclass(frozen=True, slots=True)
class Labels:
    """A label set with a stable order, usable as a dict key."""

    items: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def of(cls, mapping: dict[str, str]) -> Labels:
        return cls(tuple(sorted(mapping.items())))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)
