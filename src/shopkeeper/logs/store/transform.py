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


def _flatten_level(source: str) -> str:
    # An object value is replaced by its own (key.sub, raw) pairs; anything else stays.
    return (
        "arrayFlatten(arrayMap(p -> if(startsWith(p.2, '{'), "
        "arrayMap(q -> (concat(p.1, '.', q.1), q.2), JSONExtractKeysAndValuesRaw(p.2)), [p]), "
        f"{source}))"
    )


_ROLES: dict[str, tuple[str, ...]] = {
    "ts": TIMESTAMP_FIELDS,
    "msg": MESSAGE_FIELDS,
    "lvl": LEVEL_FIELDS,
    "svc": SERVICE_FIELDS,
    "host": HOST_FIELDS,
    "trace": TRACE_ID_FIELDS,
    "span": SPAN_ID_FIELDS,
}
"""The record fields picked from a line's keys (column `i_<role>`), numbered from 1 in this
order (their place in `picked`)."""
_ROLE_CODES: tuple[tuple[str, int], ...] = tuple(
    (name, role * 8 + rank)
    for role, names in enumerate(_ROLES.values(), 1)
    for rank, name in enumerate(names)
)
"""Each field name's code: its role times 8 plus its rank among that role's names, so that the
smallest code of a role present in a line is the name to take. Any other key is coded 255 (role
31); no key is coded 0."""
assert all(len(names) < 8 for names in _ROLES.values())


def _epoch_to_ns(number: str, integral: bool) -> str:
    # Epoch seconds, milliseconds, microseconds or nanoseconds, told apart by magnitude;
    # integers are scaled exactly (a float has no room for nanoseconds of today).
    scale = ("1000000000", "1000000", "1000") if integral else ("1e9", "1e6", "1e3")
    return (
        f"fromUnixTimestamp64Nano(toInt64({number} * multiIf(abs({number}) < 1e11, {scale[0]}, "
        f"abs({number}) < 1e14, {scale[1]}, abs({number}) < 1e17, {scale[2]}, 1)), 'UTC')"
    )


def _flatten(source: str) -> str:
    # One level of nested objects flattened; an array without one is kept as it is (no copy).
    nested = f"arrayExists(p -> startsWith(p.2, '{{'), {source})"
    return f"if({nested}, {_flatten_level(source)}, {source})"


def json_lines_select(relation: str) -> str:
    """`SELECT <all columns> FROM <relation>` for raw JSON lines.

    ClickHouse analyses this statement on every INSERT, on one thread, before reading a line:
    at ~0.1 ms per function call in the tree (chDB 26.9) that is most of a small INSERT's time
    and a fixed cost of every round. So the SQL is kept small: a chain of subqueries, each
    computing columns from the previous one's (written as one SELECT with aliases, the analyzer
    inlines every alias into every use: ~150 ms per INSERT), with as few calls as the rules
    allow. The fields are picked by coding every key (`_ROLE_CODES`) and sorting the codes: a
    field's first code in that order is its preferred name present. A `multiIf` of an `indexOf`
    per field name took three times the calls and ~8 ms more per INSERT, and searching the
    codes once per field with a lambda cost ~10% more per line."""
    assert FLATTEN_DEPTH == 3  # the two `_flatten` stages below
    aliases = sorted(LEVEL_ALIASES.items())
    names = _string_array([name for name, _ in _ROLE_CODES])
    codes = ", ".join(str(code) for _, code in _ROLE_CODES)
    stages: list[list[str]] = [
        ["line", "is_object", f"{_flatten('kv0')} AS kv1"],
        ["line", "is_object", f"arrayFilter(p -> p.2 != 'null', {_flatten('kv1')}) AS kv"],
        [
            "line",
            "is_object",
            "kv.1 AS keys",
            # A JSON string without escapes is its text between the quotes: no parse.
            "arrayMap(p -> if(startsWith(p.2, '\"'), if(position(p.2, '\\\\') = 0, "
            "substring(p.2, 2, length(p.2) - 2), JSONExtractString(p.2)), p.2), kv) AS vals",
            f"arrayMap(k -> transform(k, {names}, [{codes}], 255), keys) AS codes",
        ],
        [
            "line",
            "is_object",
            "keys",
            "vals",
            "codes",
            "arraySort(codes) AS sorted_codes",
            # The role of each sorted code: a role's first place holds its smallest code.
            "arrayMap(c -> intDiv(c, 8), sorted_codes) AS sorted_roles",
        ],
        [
            "line",
            "is_object",
            "keys",
            "vals",
            # Per role, the position of its preferred key, 0 if none (`sorted_codes[0]` is 0,
            # which no key has).
            "["
            + ", ".join(
                f"indexOf(codes, sorted_codes[indexOf(sorted_roles, {r})])"
                for r in range(1, len(_ROLES) + 1)
            )
            + "] AS picked",
        ],
        [
            "line",
            "is_object",
            "vals",
            # `vals[0]` is '': a field a line lacks reads as empty, with no `if`.
            *(f"picked[{n}] AS i_{role}" for n, role in enumerate(_ROLES, 1)),
            "vals[i_ts] AS ts_text",
            "toInt64OrNull(ts_text) AS ts_int",
            "toFloat64OrNull(ts_text) AS ts_float",
            "arrayFilter((p, i) -> NOT has(picked, i), arrayZip(keys, vals), arrayEnumerate(vals)) "
            "AS rest",
        ],
        [
            "*",
            f"multiIf(ts_int IS NOT NULL, {_epoch_to_ns('ts_int', True)}, "
            f"ts_float IS NOT NULL, {_epoch_to_ns('ts_float', False)}, "
            "parseDateTime64BestEffortOrNull(ts_text, 9, 'UTC')) AS ts_parsed",
            "now64(9, 'UTC') AS received",
        ],
    ]
    # Why a line was stored raw, as the attribute naming it (no attribute when it was not).
    parse_error = (
        f"multiIf(NOT is_object, map({_quote(PARSE_ERROR)}, 'not a JSON object'), "
        f"i_ts > 0 AND ts_parsed IS NULL, map({_quote(PARSE_ERROR)}, "
        "concat('unparseable timestamp: ', ts_text)), map())"
    )
    selected = {
        "tenant": "{tenant:String}",
        "service": f"if(vals[i_svc] != '', vals[i_svc], {_quote(UNKNOWN_SERVICE)})",
        "host": "vals[i_host]",
        "level": (
            f"transform(lower(trimBoth(vals[i_lvl])), {_string_array([k for k, _ in aliases])}, "
            f"{_string_array([v for _, v in aliases])}, 'unknown')"
        ),
        "source": "{source:String}",
        "timestamp": "ifNull(ts_parsed, received)",
        "observed_at": "received",
        "message": "if(is_object AND i_msg > 0, vals[i_msg], line)",
        "trace_id": "vals[i_trace]",
        "span_id": "vals[i_span]",
        "attributes": (
            "mapUpdate(mapUpdate(mapFromArrays(rest.1, rest.2),"
            " CAST(JSONExtract({extra:String}, 'Map(String, String)'), 'Map(String, String)')), "
            f"{parse_error})"
        ),
        "label_keys": "CAST([], 'Array(String)')",
    }
    assert tuple(selected) == COLUMN_NAMES
    # No value is pasted: tenant, source and extra are bound parameters. The relation's
    # `line` is trimmed into `text`, then named `line` again (an alias may not shadow it).
    first = "trimBoth(line) AS text, startsWith(text, '{') AND isValidJSON(text) AS is_object"
    sql = (
        f"SELECT {first}, JSONExtractKeysAndValuesRaw(text) AS kv0 FROM {relation} WHERE text != ''"  # noqa: S608
    )
    sql = f"SELECT text AS line, is_object, kv0 FROM ({sql})"  # noqa: S608
    for columns in stages:
        sql = f"SELECT {', '.join(columns)}\nFROM ({sql})"
    projections = ",\n    ".join(f"{expr} AS {name}" for name, expr in selected.items())
    return f"SELECT\n    {projections}\nFROM ({sql})"
