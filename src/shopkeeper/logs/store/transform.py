"""SQL that maps raw JSON lines to log rows inside ClickHouse: each line is parsed once by
ClickHouse's JSON reader, nested objects flattened to dotted keys, the record's fields picked by
the names of `shopkeeper.logs.records`, and the level normalised by the same alias table.

The statement reads a one-column relation `line String` (chDB: `file(path, LineAsString)`; a
server: `input('line String')` fed with the body) and takes bound parameters `tenant`,
`source` and `extra` (attributes every line of the batch gets, e.g. the Elasticsearch index).
"""

from __future__ import annotations

from collections.abc import Sequence

from shopkeeper.logs.records import (
    FLATTEN_DEPTH,
    HOST_FIELDS,
    LEVEL_ALIASES,
    LEVEL_FIELDS,
    MESSAGE_FIELDS,
    PARSE_ERROR,
    SERVICE_FIELDS,
    SPAN_ID_FIELDS,
    TIMESTAMP_FIELDS,
    TRACE_ID_FIELDS,
    UNKNOWN_SERVICE,
)
from shopkeeper.logs.store.schema import COLUMN_NAMES


def _string_array(values: Sequence[str]) -> str:
    return "[" + ", ".join(_quote(value) for value in values) + "]"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _first_index(fields: Sequence[str]) -> str:
    # The first of the names present, in order of preference (indexOf: no lambda per key).
    found = [f"indexOf(keys, {_quote(field)})" for field in fields]
    branches = ", ".join(f"{index} > 0, {index}" for index in found)
    return f"multiIf({branches}, 0)"


def _flatten_level(source: str) -> str:
    # An object value is replaced by its own (key.sub, raw) pairs; anything else stays.
    return (
        "arrayFlatten(arrayMap(p -> if(startsWith(p.2, '{'), "
        "arrayMap(q -> (concat(p.1, '.', q.1), q.2), JSONExtractKeysAndValuesRaw(p.2)), [p]), "
        f"{source}))"
    )


def _epoch_to_ns(number: str, integral: bool) -> str:
    # Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude;
    # integers are scaled exactly (a float has no room for nanoseconds of today).
    scale = ("1000000000", "1000000", "1000") if integral else ("1e9", "1e6", "1e3")
    return (
        f"multiIf(abs({number}) < 1e11, {number} * {scale[0]}, "
        f"abs({number}) < 1e14, {number} * {scale[1]}, "
        f"abs({number}) < 1e17, {number} * {scale[2]}, {number})"
    )


def json_lines_select(relation: str) -> str:
    """`SELECT <all columns> FROM <relation>` for raw JSON lines.

    Built as a chain of subqueries, each computing columns from the previous one's: written
    as one SELECT with aliases, the analyzer inlines every alias into every use and spent
    ~150 ms analysing the tree on every INSERT, whatever its size."""
    aliases = sorted(LEVEL_ALIASES.items())
    stages: list[list[str]] = [
        ["line", "startsWith(line, '{') AND isValidJSON(line) AS is_object"],
        # Not a JSON object: no pairs (an `if` here would copy every array).
        ["*", "JSONExtractKeysAndValuesRaw(line) AS kv0"],
    ]
    for depth in range(1, FLATTEN_DEPTH):
        previous = f"kv{depth - 1}"
        nested = f"arrayExists(p -> startsWith(p.2, '{{'), {previous})"
        stages.append(
            [
                "line",
                "is_object",
                f"if({nested}, {_flatten_level(previous)}, {previous}) AS kv{depth}",
            ]
        )
    stages += [
        ["line", "is_object", f"arrayFilter(p -> p.2 != 'null', kv{FLATTEN_DEPTH - 1}) AS kv"],
        [
            "line",
            "is_object",
            # `.1` of an array of tuples is the array of their first elements, as a lambda
            # would give, with one lambda less to analyse on every INSERT.
            "kv.1 AS keys",
            # A JSON string without escapes is its text between the quotes: no parse.
            "arrayMap(p -> if(startsWith(p.2, '\"'), if(position(p.2, '\\\\') = 0, "
            "substring(p.2, 2, length(p.2) - 2), JSONExtractString(p.2)), p.2), kv) AS vals",
        ],
        [
            "*",
            f"{_first_index(TIMESTAMP_FIELDS)} AS i_ts",
            f"{_first_index(MESSAGE_FIELDS)} AS i_msg",
            f"{_first_index(LEVEL_FIELDS)} AS i_lvl",
            f"{_first_index(SERVICE_FIELDS)} AS i_svc",
            f"{_first_index(HOST_FIELDS)} AS i_host",
            f"{_first_index(TRACE_ID_FIELDS)} AS i_trace",
            f"{_first_index(SPAN_ID_FIELDS)} AS i_span",
        ],
        ["*", "if(i_ts > 0, vals[i_ts], '') AS ts_text"],
        [
            "*",
            "multiIf(toInt64OrNull(ts_text) IS NOT NULL, "
            "fromUnixTimestamp64Nano("
            f"toInt64({_epoch_to_ns('toInt64OrZero(ts_text)', True)}), 'UTC'), "
            "toFloat64OrNull(ts_text) IS NOT NULL, "
            "fromUnixTimestamp64Nano("
            f"toInt64({_epoch_to_ns('toFloat64OrZero(ts_text)', False)}), 'UTC'), "
            "parseDateTime64BestEffortOrNull(ts_text, 9, 'UTC')) AS ts_parsed",
            "now64(9, 'UTC') AS received",
            "arrayFilter((p, i) -> i NOT IN (i_ts, i_msg, i_lvl, i_svc, i_host, i_trace, i_span), "
            "arrayZip(keys, vals), arrayEnumerate(keys)) AS rest",
        ],
        [
            "*",
            "multiIf(NOT is_object, 'not a JSON object', "
            "i_ts > 0 AND ts_parsed IS NULL, concat('unparseable timestamp: ', ts_text), '') "
            "AS parse_error",
        ],
    ]
    level_value = "if(i_lvl > 0, lower(trimBoth(vals[i_lvl])), '')"
    selected = {
        "tenant": "{tenant:String}",
        "service": f"if(i_svc > 0 AND vals[i_svc] != '', vals[i_svc], {_quote(UNKNOWN_SERVICE)})",
        "host": "if(i_host > 0, vals[i_host], '')",
        "level": (
            f"transform({level_value}, {_string_array([k for k, _ in aliases])}, "
            f"{_string_array([v for _, v in aliases])}, 'unknown')"
        ),
        "source": "{source:String}",
        "timestamp": "ifNull(ts_parsed, received)",
        "observed_at": "received",
        "message": "if(is_object AND i_msg > 0, vals[i_msg], line)",
        "trace_id": "if(i_trace > 0, vals[i_trace], '')",
        "span_id": "if(i_span > 0, vals[i_span], '')",
        "attributes": (
            "mapUpdate(mapUpdate(mapFromArrays(rest.1, rest.2),"
            " CAST(JSONExtract({extra:String}, 'Map(String, String)'), 'Map(String, String)')), "
            f"if(parse_error != '', map({_quote(PARSE_ERROR)}, parse_error), map()))"
        ),
        "label_keys": "CAST([], 'Array(String)')",
    }
    assert tuple(selected) == COLUMN_NAMES
    # No value is pasted: tenant, source and extra are bound parameters.
    sql = f"SELECT trimBoth(line) AS trimmed FROM {relation} WHERE trimmed != ''"  # noqa: S608
    sql = f"SELECT trimmed AS line FROM ({sql})"  # noqa: S608
    for columns in stages:
        sql = f"SELECT {', '.join(columns)}\nFROM ({sql})"
    projections = ",\n    ".join(f"{expr} AS {name}" for name, expr in selected.items())
    return f"SELECT\n    {projections}\nFROM ({sql})"
