"""Golden tests: each LogQL construct pinned to the ClickHouse SQL and bound parameters it
compiles to. User input only ever appears in the parameters."""

from __future__ import annotations

import pytest

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.compiler import (
    Params,
    bucket_counts_sql,
    compile_log_query,
    inner_tokens,
    log_rows_sql,
)
from shopkeeper.logs.query.parser import parse

TABLE = "shopkeeper_logs.logs"
PREFIX = (
    "SELECT toUnixTimestamp64Nano(timestamp) AS ts, message, service, host, level, source, "
    f"trace_id, span_id, attributes, label_keys FROM {TABLE} WHERE tenant = {{tenant:String}} "
    "AND timestamp >= fromUnixTimestamp64Nano({start:Int64}, 'UTC') "
    "AND timestamp < fromUnixTimestamp64Nano({end:Int64}, 'UTC')"
)
SUFFIX = " ORDER BY timestamp DESC LIMIT {limit:UInt64} OFFSET {offset:UInt64}"
ATTR_UNDERSCORE = (
    "if(mapContains(attributes, {p1:String}), attributes[{p1:String}], "
    "arrayElement(mapValues(attributes), arrayFirstIndex(k -> match(k, {p2:String}), "
    "mapKeys(attributes))))"
)


def compiled(logql: str) -> tuple[str, dict[str, object], tuple[ast.Stage, ...]]:
    expr = parse(logql)
    assert isinstance(expr, ast.LogQuery)
    params = Params()
    result = compile_log_query(expr, params)
    return log_rows_sql(TABLE, result, backward=True), params.values, result.residual


@pytest.mark.parametrize(
    ("logql", "where", "params"),
    [
        ('{service="shop"}', "service = {p0:String}", {"p0": "shop"}),
        ('{host="h1", service!="shop"}', "host = {p0:String} AND service != {p1:String}",
         {"p0": "h1", "p1": "shop"}),
        ('{level=~"warn|error"}', "match(level, {p0:String})", {"p0": "^(?:warn|error)$"}),
        ('{level!~"debug", host="h1"}', "NOT match(level, {p0:String}) AND host = {p1:String}",
         {"p0": "^(?:debug)$", "p1": "h1"}),
        ('{env="prod"}', "attributes[{p0:String}] = {p1:String}", {"p0": "env", "p1": "prod"}),
        ('{service="a", http_status="500"}',
         f"service = {{p0:String}} AND {ATTR_UNDERSCORE} = {{p3:String}}",
         {"p0": "a", "p1": "http_status", "p2": "^(?:http[^a-zA-Z0-9]status)$", "p3": "500"}),
        ('{trace_id="abc"}', "trace_id = {p0:String}", {"p0": "abc"}),
        ('{service=~".+"}', "service != ''", {}),
        ('{service=~".+", host=~".*", level!~".+"}', "service != '' AND 1 AND level = ''", {}),
    ],
)  # fmt: skip
def test_stream_selectors(logql: str, where: str, params: dict[str, object]) -> None:
    sql, bound, residual = compiled(logql)
    assert sql == f"{PREFIX} AND {where}{SUFFIX}"
    assert bound == params
    assert residual == ()


@pytest.mark.parametrize(
    ("line_filters", "where", "params"),
    [
        # One word: the text index (hasToken), a whole-word match.
        ('|= "timeout"', "hasToken(message, {p1:String})", {"p1": "timeout"}),
        ('!= "timeout"', "NOT hasToken(message, {p1:String})", {"p1": "timeout"}),
        # A phrase: a substring, narrowed by the index on its inner whole words.
        ('|= "user 42 failed"',
         "position(message, {p1:String}) > 0 AND hasToken(message, {p2:String})",
         {"p1": "user 42 failed", "p2": "42"}),
        ('|= "GET /api/v1/orders HTTP"',
         "position(message, {p1:String}) > 0 AND hasToken(message, {p2:String}) AND "
         "hasToken(message, {p3:String}) AND hasToken(message, {p4:String})",
         {"p1": "GET /api/v1/orders HTTP", "p2": "api", "p3": "v1", "p4": "orders"}),
        ('!= "status=500"', "NOT position(message, {p1:String}) > 0", {"p1": "status=500"}),
        ('|~ "time(out)?"', "match(message, {p1:String})", {"p1": "time(out)?"}),
        ('!~ `\\d{3}ms`', "NOT match(message, {p1:String})", {"p1": "\\d{3}ms"}),
        ('|= "a" |= "b" != "c"',
         "hasToken(message, {p1:String}) AND hasToken(message, {p2:String}) "
         "AND NOT hasToken(message, {p3:String})", {"p1": "a", "p2": "b", "p3": "c"}),
        ('!= ""', "0", {}),
    ],
)  # fmt: skip
def test_line_filters(line_filters: str, where: str, params: dict[str, object]) -> None:
    sql, bound, residual = compiled('{service="shop"} ' + line_filters)
    assert sql == f"{PREFIX} AND service = {{p0:String}} AND {where}{SUFFIX}"
    assert bound == {"p0": "shop", **params}
    assert residual == ()


def test_empty_line_filter_is_dropped() -> None:
    sql, _, _ = compiled('{service="shop"} |= ""')
    assert sql == f"{PREFIX} AND service = {{p0:String}}{SUFFIX}"


def test_inner_tokens_are_those_bounded_inside_the_needle() -> None:
    assert inner_tokens("user 42 failed") == ["42"]
    assert inner_tokens(" timeout ") == ["timeout"]
    assert inner_tokens("timeout=") == []
    assert inner_tokens("a.b.c") == ["b"]


def test_label_filter_on_stored_labels_goes_to_sql() -> None:
    sql, bound, residual = compiled('{service="shop"} | trace_id="abc" | host=~"h[12]"')
    assert sql == (
        f"{PREFIX} AND service = {{p0:String}} AND trace_id = {{p1:String}} "
        f"AND match(host, {{p2:String}}){SUFFIX}"
    )
    assert bound == {"p0": "shop", "p1": "abc", "p2": "^(?:h[12])$"}
    assert residual == ()


def test_number_label_filter_narrows_in_sql_and_is_decided_in_python() -> None:
    sql, bound, residual = compiled('{service="shop"} | status >= 500')
    column = "attributes[{p1:String}]"
    assert sql == (
        f"{PREFIX} AND service = {{p0:String}} AND ({column} != '' AND "
        f"(isNull(toFloat64OrNull({column})) OR toFloat64OrNull({column}) >= {{p2:Float64}}))"
        f"{SUFFIX}"
    )
    assert bound == {"p0": "shop", "p1": "status", "p2": 500.0}
    assert len(residual) == 1


def test_or_of_string_filters_is_exact_in_sql() -> None:
    sql, _, residual = compiled('{service="shop"} | level="error" or host="h1"')
    assert sql == (
        f"{PREFIX} AND service = {{p0:String}} AND ((level = {{p1:String}}) OR "
        f"(host = {{p2:String}})){SUFFIX}"
    )
    assert residual == ()


def test_stages_after_a_parser_stay_in_python_but_line_filters_still_push() -> None:
    sql, bound, residual = compiled(
        '{service="shop"} | json | status="500" |= "timeout" | line_format "{{.msg}}" |= "x"'
    )
    assert sql == (
        f"{PREFIX} AND service = {{p0:String}} AND hasToken(message, {{p1:String}}){SUFFIX}"
    )
    assert bound == {"p0": "shop", "p1": "timeout"}
    assert [type(stage).__name__ for stage in residual] == [
        "JsonParser",
        "LabelFilter",
        "LineFormat",
        "LineFilter",
    ]


def test_forward_direction_orders_oldest_first() -> None:
    expr = parse('{service="shop"}')
    assert isinstance(expr, ast.LogQuery)
    sql = log_rows_sql(TABLE, compile_log_query(expr, Params()), backward=False)
    assert sql.endswith(" ORDER BY timestamp ASC LIMIT {limit:UInt64} OFFSET {offset:UInt64}")


def test_metric_bucketing_is_sql_with_pushed_down_grouping() -> None:
    expr = parse('{service="shop"} |= "error"')
    assert isinstance(expr, ast.LogQuery)
    params = Params()
    result = compile_log_query(expr, params)
    where = PREFIX.split(" WHERE ", 1)[1]
    bucket = (
        "intDiv(toUnixTimestamp64Nano(timestamp) - {origin:Int64} + {width:Int64} - 1, "
        "{width:Int64}) AS bucket"
    )
    conditions = "service = {p0:String} AND hasToken(message, {p1:String})"
    assert bucket_counts_sql(TABLE, result, group_by=("level",), with_bytes=False) == (
        f"SELECT level, {bucket}, count() AS lines FROM {TABLE} WHERE {where} AND {conditions} "
        "GROUP BY level, bucket ORDER BY bucket LIMIT {limit:UInt64}"
    )
    assert bucket_counts_sql(TABLE, result, group_by=None, with_bytes=True) == (
        "SELECT service, host, level, source, mapFromArrays(label_keys, "
        f"arrayMap(k -> attributes[k], label_keys)) AS stream_attributes, {bucket}, "
        "count() AS lines, "
        f"sum(length(message)) AS bytes FROM {TABLE} WHERE {where} AND {conditions} "
        "GROUP BY service, host, level, source, stream_attributes, bucket ORDER BY bucket "
        "LIMIT {limit:UInt64}"
    )


def test_hostile_input_only_reaches_parameters() -> None:
    hostile = "x' OR 1=1 --"
    sql, bound, _ = compiled(f'{{service="{hostile}"}} |= "{hostile}" | host=~"{hostile}"')
    assert hostile not in sql
    assert "OR 1=1" not in sql
    assert hostile in bound.values()


def test_grafanas_drop_of_error_labels_before_any_parser_stays_in_sql() -> None:
    _, _, residual = compiled('{service="shop"} | drop __error__, __error_details__')
    assert residual == ()
    _, _, residual = compiled('{service="shop"} | json | drop __error__')
    assert len(residual) == 2


@pytest.mark.parametrize(
    ("name", "keys", "others"),
    [
        ("http_status", ["http_status", "http.status", "http-status", "http status"],
         ["httpstatus", "http.statuses", "xhttp.status"]),
        ("_1abc", ["1abc", "_1abc", "-1abc"], ["11abc", "abc"]),
        ("na_ve", ["naïve", "na.ve"], ["naive", "na..ve"]),
    ],
)  # fmt: skip
def test_sanitized_key_pattern_matches_exactly_the_keys_that_sanitize_to_the_name(
    name: str, keys: list[str], others: list[str]
) -> None:
    import re

    from shopkeeper.logs.query.compiler import sanitized_key_pattern
    from shopkeeper.logs.query.pipeline import sanitize

    pattern = re.compile(sanitized_key_pattern(name))
    for key in keys:
        assert sanitize(key) == name and pattern.match(key), key
    for key in others:
        assert sanitize(key) != name and not pattern.match(key), key
