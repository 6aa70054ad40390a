"""LogQL -> ClickHouse SQL. User input reaches SQL only as bound `{pN:Type}` parameters; the
only text pasted is our own (column names, the checked table name, fixed functions).

What SQL can decide exactly (stream selectors, line filters before any `line_format`, label
filters on stored labels before any parser or formatter) goes into WHERE; the rest of the
pipeline is left for `pipeline.py` to run on the rows SQL returns."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shopkeeper.logs.query import ast
from shopkeeper.logs.store import schema

# Columns that are labels; anything else names an attribute (by its sanitized key).
COLUMN_LABELS = ("service", "host", "level", "source", "trace_id", "span_id")
STREAM_COLUMNS = ("service", "host", "level", "source")
ROW_COLUMNS = (
    "toUnixTimestamp64Nano(timestamp) AS ts, message, service, host, level, source, "
    "trace_id, span_id, attributes, label_keys"
)
_TOKEN_CHARS = re.compile(r"[0-9A-Za-z\x80-\U0010ffff]+")
# A line filter is tested against the line as stored only until a stage rewrites it.
_LINE_REWRITERS = (ast.LineFormat,)
_LABEL_CHANGERS = (
    ast.JsonParser,
    ast.LogfmtParser,
    ast.RegexpParser,
    ast.PatternParser,
    ast.LineFormat,
    ast.LabelFormat,
    ast.Drop,
    ast.Keep,
)


@dataclass
class Params:
    """Bound parameters of one statement, named p0, p1, ... in order of appearance."""

    values: dict[str, Any] = field(default_factory=dict)

    def bind(self, value: Any, kind: str = "String") -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"


@dataclass(frozen=True, slots=True)
class Compiled:
    """The WHERE conditions of a log query's selector and pushed stages, and what is left."""

    conditions: tuple[str, ...]
    residual: tuple[ast.Stage, ...]

    @property
    def filters_in_python(self) -> bool:
        """Whether the Python pipeline may still drop rows (then SQL's LIMIT is not final)."""
        return any(isinstance(s, ast.LineFilter | ast.LabelFilter) for s in self.residual)


def label_sql(name: str, params: Params) -> str:
    """The SQL value of a label: a column, or the attribute whose sanitized key is `name`
    (Loki's rule: characters outside [a-zA-Z0-9_] become `_`, a leading digit gets a `_`)."""
    if name in COLUMN_LABELS:
        return name
    key = params.bind(name)
    if "_" not in name:
        # Sanitizing only ever introduces `_`: without one, the key is the name itself.
        return f"attributes[{key}]"
    return (
        f"if(mapContains(attributes, {key}), attributes[{key}], arrayElement(mapValues(attributes),"
        f" arrayFirstIndex(k -> match(k, {params.bind(sanitized_key_pattern(name))}),"
        " mapKeys(attributes))))"
    )


def sanitized_key_pattern(name: str) -> str:
    """An anchored regex matching exactly the keys that sanitize to `name`: each `_` of the
    name stands for any character outside [a-zA-Z0-9]; a `_` before a leading digit may also
    be the prefix that sanitizing adds to a key starting with that digit."""

    def spelled(text: str) -> str:
        return "".join("[^a-zA-Z0-9]" if char == "_" else char for char in text)

    alternatives = [spelled(name)]
    if len(name) > 1 and name[0] == "_" and name[1].isdigit():
        alternatives.append(spelled(name[1:]))
    return "^(?:" + "|".join(alternatives) + ")$"


def anchored(pattern: str) -> str:
    """Loki's label regexes match the whole value; ClickHouse's `match` searches."""
    return f"^(?:{pattern})$"


def matcher_sql(name: str, op: str, value: str, params: Params) -> str:
    # `{service=~".+"}` is how Grafana users say "every stream": no regex to run per row.
    if op in ("=~", "!~") and value in (".+", ".*"):
        matches_all = value == ".*"
        if op == "=~":
            return "1" if matches_all else f"{label_sql(name, params)} != ''"
        return "0" if matches_all else f"{label_sql(name, params)} = ''"
    column = label_sql(name, params)
    if op == "=":
        return f"{column} = {params.bind(value)}"
    if op == "!=":
        return f"{column} != {params.bind(value)}"
    if op == "=~":
        return f"match({column}, {params.bind(anchored(value))})"
    return f"NOT match({column}, {params.bind(anchored(value))})"


def inner_tokens(needle: str) -> list[str]:
    """The tokens of `needle` that are whole words in any line containing it: those bounded
    by a separator (not the needle's edge) on both sides."""
    out = []
    for match in _TOKEN_CHARS.finditer(needle):
        if match.start() > 0 and match.end() < len(needle):
            out.append(match.group())
    return out


def is_single_token(needle: str) -> bool:
    return bool(_TOKEN_CHARS.fullmatch(needle))


def has_token_sql(token: str, params: Params) -> str:
    """Whether the line holds `token` as a whole word: on the text index, or, for a long number
    or hex string the index leaves out (where `hasToken` would wrongly find nothing), among the
    line's unindexed tokens, which a bloom filter narrows to a few granules."""
    if schema.is_unindexed_token(token):
        # `position` first: a cheap substring test spares most rows of the granules the bloom
        # filter keeps the tokenizing `has` (10M lines: 624 -> 224 ms for a number in 200 lines).
        bound = params.bind(token)
        return f"(position(message, {bound}) > 0 AND has({schema.UNINDEXED_TOKENS}, {bound}))"
    return f"hasToken(message, {params.bind(token)})"


def line_filter_sql(line_filter: ast.LineFilter, params: Params) -> str | None:
    """`|= "word"` is a word search on the text index (`hasToken`); a longer needle is a
    substring search narrowed by the index on its inner whole words."""
    value = line_filter.value
    if line_filter.op in ("|=", "!="):
        if value == "":
            return None if line_filter.op == "|=" else "0"
        if is_single_token(value):
            found = has_token_sql(value, params)
        else:
            parts = [f"position(message, {params.bind(value)}) > 0"]
            parts += [has_token_sql(token, params) for token in inner_tokens(value)]
            found = " AND ".join(parts) if line_filter.op == "|=" else parts[0]
        return found if line_filter.op == "|=" else f"NOT {found}"
    found = f"match(message, {params.bind(value)})"
    return found if line_filter.op == "|~" else f"NOT {found}"


def label_filter_sql(expr: ast.LabelFilterExpr, params: Params) -> tuple[str, bool]:
    """(condition, exact): exact when SQL decides the filter alone; otherwise the condition
    only narrows (a superset) and Python re-applies the filter."""
    if isinstance(expr, ast.StringLabelFilter):
        if expr.name.startswith("__"):
            return "1", False
        return matcher_sql(expr.name, expr.op, expr.value, params), True
    if isinstance(expr, ast.NumberLabelFilter):
        if expr.name.startswith("__"):
            return "1", False
        # Loki keeps a line whose value does not parse (marking it with __error__); a missing
        # label drops it. SQL only drops what surely fails.
        column = label_sql(expr.name, params)
        if expr.kind != "number":
            return f"{column} != ''", False
        number = f"toFloat64OrNull({column})"
        op = "=" if expr.op == "==" else expr.op
        bound = params.bind(expr.value, "Float64")
        return f"({column} != '' AND (isNull({number}) OR {number} {op} {bound}))", False
    left, left_exact = label_filter_sql(expr.left, params)
    right, right_exact = label_filter_sql(expr.right, params)
    joiner = "AND" if isinstance(expr, ast.AndFilter) else "OR"
    return f"(({left}) {joiner} ({right}))", left_exact and right_exact


def compile_log_query(query: ast.LogQuery, params: Params) -> Compiled:
    conditions = [matcher_sql(m.name, m.op, m.value, params) for m in query.matchers]
    residual: list[ast.Stage] = []
    line_rewritten = False
    labels_changed = False
    for stage in query.stages:
        if isinstance(stage, ast.LineFilter) and not line_rewritten:
            condition = line_filter_sql(stage, params)
            if condition is not None:
                conditions.append(condition)
            continue
        if isinstance(stage, ast.LabelFilter) and not labels_changed:
            condition, exact = label_filter_sql(stage.expr, params)
            if condition != "1":
                conditions.append(condition)
            if exact:
                continue
        if (
            isinstance(stage, ast.Drop)
            and not labels_changed
            and not stage.matchers
            and all(name.startswith("__") for name in stage.names)
        ):
            # Grafana's log volume query says `| drop __error__`: before any parser there is
            # no error label to drop, and the query stays whole in SQL.
            continue
        if isinstance(stage, _LINE_REWRITERS):
            line_rewritten = True
        if isinstance(stage, _LABEL_CHANGERS):
            labels_changed = True
        residual.append(stage)
    return Compiled(tuple(conditions), tuple(residual))


def where_clause(conditions: Sequence[str]) -> str:
    return " AND ".join(
        [
            "tenant = {tenant:String}",
            "timestamp >= fromUnixTimestamp64Nano({start:Int64}, 'UTC')",
            "timestamp < fromUnixTimestamp64Nano({end:Int64}, 'UTC')",
            *conditions,
        ]
    )


def log_rows_sql(table: str, compiled: Compiled, *, backward: bool) -> str:
    """Rows of a log query, newest (backward) or oldest (forward) first, one page at a time."""
    order = "DESC" if backward else "ASC"
    return (
        f"SELECT {ROW_COLUMNS} FROM {table} WHERE {where_clause(compiled.conditions)} "  # noqa: S608
        f"ORDER BY timestamp {order} LIMIT {{limit:UInt64}} OFFSET {{offset:UInt64}}"
    )


def sample_rows_sql(table: str, compiled: Compiled) -> str:
    """Every row of a metric query's window, for stages SQL cannot run (bounded by the caller)."""
    return (
        f"SELECT {ROW_COLUMNS} FROM {table} WHERE {where_clause(compiled.conditions)} "  # noqa: S608
        "ORDER BY timestamp LIMIT {limit:UInt64}"
    )


# The stream-label attributes of a row; walks `label_keys` (mostly empty), not every attribute.
STREAM_LABELS_SQL = "mapFromArrays(label_keys, arrayMap(k -> attributes[k], label_keys))"


def bucket_counts_sql(
    table: str, compiled: Compiled, *, group_by: Sequence[str] | None, with_bytes: bool
) -> str:
    """Lines (and bytes) per fine time bucket and series: the bucketing of count_over_time,
    rate, bytes_over_time and bytes_rate, done by ClickHouse. Bucket j holds the lines of
    (origin + (j-1)·width, origin + j·width]. `group_by` None groups by the whole stream;
    otherwise by those stream columns only (a pushed-down `sum by`)."""
    if group_by is None:
        keys = [*STREAM_COLUMNS, f"{STREAM_LABELS_SQL} AS stream_attributes"]
        names = [*STREAM_COLUMNS, "stream_attributes"]
    else:
        keys = list(group_by)
        names = list(group_by)
    bucket = (
        "intDiv(toUnixTimestamp64Nano(timestamp) - {origin:Int64} + {width:Int64} - 1,"
        " {width:Int64}) AS bucket"
    )
    measures = "count() AS lines" + (", sum(length(message)) AS bytes" if with_bytes else "")
    select = ", ".join([*keys, bucket, measures])
    group = ", ".join([*names, "bucket"])
    return (
        f"SELECT {select} FROM {table} WHERE {where_clause(compiled.conditions)} "  # noqa: S608
        f"GROUP BY {group} ORDER BY bucket LIMIT {{limit:UInt64}}"
    )
