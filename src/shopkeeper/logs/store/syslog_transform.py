"""SQL that parses raw syslog frames (RFC 5424 and RFC 3164) into log rows inside ClickHouse, by
the rules of `shopkeeper.logs.ingest.syslog.parse_fields` (which the live tail still uses; the
tests hold both to the same rows).

The statement reads `SYSLOG_STRUCTURE` rows (chDB: `file(path, TabSeparated)`; a server:
`input()` fed with the body): the peer's address and the time of receipt (what a message
without hostname or timestamp takes), and one frame as the sender framed it. One regular
expression per line tells the formats apart and cuts the fields; structured data is taken
apart only on the lines that carry it.
"""

from __future__ import annotations

import re
from typing import Final

from shopkeeper.logs.records import PARSE_ERROR, UNKNOWN_SERVICE, syslog_severity_level
from shopkeeper.logs.store.schema import COLUMN_NAMES

SYSLOG_STRUCTURE: Final = "peer String, received Int64, frame String"

FACILITIES: Final = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
NOT_SYSLOG: Final = "not an RFC 5424 or RFC 3164 syslog message"
FRAME_LEADING: Final = b" \r\n\x00"
FRAME_TRAILING: Final = b"\r\n\x00"
"""What is stripped off a frame's ends before it is parsed (here and in Python alike)."""


def row_prefix(peer: str, received_ns: int) -> bytes:
    """What every row of frames from one peer, received at one moment, begins with."""
    return f"{peer}\t{received_ns}\t".encode()


def escape_frame(frame: bytes, *, newlines: bool = True) -> bytes:
    """A frame as one TabSeparated field (a frame may hold tabs, newlines and backslashes).
    `newlines=False` leaves newlines alone: for a region of frames whose newlines end rows."""
    if b"\\" in frame:
        frame = frame.replace(b"\\", b"\\\\")
    if b"\t" in frame:
        frame = frame.replace(b"\t", b"\\t")
    if newlines and b"\n" in frame:
        frame = frame.replace(b"\n", b"\\n")
    if b"\r" in frame:
        frame = frame.replace(b"\r", b"\\r")
    return frame


_TSV_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_TSV_CHARACTERS: Final = {
    b"t": b"\t",
    b"n": b"\n",
    b"r": b"\r",
    b"0": b"\x00",
    b"b": b"\b",
    b"f": b"\f",
}


def split_row(row: bytes) -> tuple[str, int, bytes]:
    """(peer, received ns, frame) of one row, as ClickHouse reads it."""
    peer, received, frame = row.split(b"\t", 2)
    if b"\\" in frame:
        frame = _TSV_ESCAPE.sub(lambda m: _TSV_CHARACTERS.get(m[1], m[1]), frame)
    return peer.decode(), int(received), frame


# The Python parser's expressions in RE2's syntax (no lookahead).
_BSD_STAMP = r"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"
_ISO_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*"
_TAG = r"([^\s:\[\]]{1,64})(?:\[([^\]\s]*)\]:?|:) ?"
_SD = r'(-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)'
# One expression for every format, its alternatives in the Python parser's order of trial
# (RE2 picks the first alternative that matches, as a backtracking engine would).
# Groups: 1 PRI; RFC 5424: 2 TIMESTAMP, 3 HOSTNAME, 4 APP-NAME, 5 PROCID, 6 MSGID, 7 SD, 8 MSG;
# RFC 3164 with a timestamp: 9 BSD or 10 RFC 3339 stamp, then either a tag (11 tag, 12 pid,
# 13 message), or a hostname (14) and a tag (15, 16, 17) or not (18), or neither (19);
# RFC 3164 without one (Python's SysLogHandler): maybe a tag (20, 21), 22 message.
_SYSLOG = (
    r"(?s)^<(\d{1,3})>(?:"
    rf"1 (\S+) (\S+) (\S+) (\S+) (\S+) {_SD}(?: (.*))?"
    rf"|(?:({_BSD_STAMP})|({_ISO_STAMP})) ?"
    rf"(?:{_TAG}(.*)"
    rf"|([^\s:\[\]]+) (?:{_TAG}(.*)|(\S.*))"
    r"|(.*))"
    rf"| ?(?:{_TAG})?(.*))"
)
# The same with tags of any length: RE2 expands `{1,64}` into 64 copies, and the larger program
# takes its slow path (~15x the time per line). Where every tag it captures is at most 64 bytes
# long, it cuts the line exactly as `_SYSLOG` does; elsewhere `_SYSLOG` cuts it.
_SYSLOG_FAST = _SYSLOG.replace("{1,64}", "+")
_SD_ELEMENT = r'\[([^\s\]]+)((?:\s+[^\s=\]]+="(?:[^"\\]|\\.)*")*)\s*\]'
_SD_PARAM = r'([^\s=\]]+)="((?:[^"\\]|\\.)*)"'
_SD_ESCAPE = r'\\([\\"\]])'
_RFC3339 = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d*)?(?:[Zz]|[+-]\d\d:\d\d)?$"
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip
_BOM = "\ufeff"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _bytes_literal(value: bytes) -> str:
    return "'" + "".join(f"\\x{byte:02X}" for byte in value) + "'"


def _array(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_quote(value) for value in values) + "]"


def _structured_data(sd: str) -> str:
    """`[id k="v" ...]...` as (`id.k`, `v`) pairs, `\\"`, `\\\\` and `\\]` unescaped."""
    value = (
        f"if(position(p[2], '\\\\') > 0, replaceRegexpAll(p[2], {_quote(_SD_ESCAPE)}, '\\\\1'), "
        "p[2])"
    )
    return (
        "arrayFlatten(arrayMap(e -> arrayMap(p -> (concat(e[1], '.', p[1]), "
        f"{value}), extractAllGroupsVertical(e[2], {_quote(_SD_PARAM)})), "
        f"extractAllGroupsVertical({sd}, {_quote(_SD_ELEMENT)})))"
    )


def syslog_select(relation: str) -> str:
    """`SELECT <all columns> FROM <relation>` for `SYSLOG_STRUCTURE` rows.

    A chain of subqueries, each computing columns from the previous one's: the analyzer would
    otherwise inline every alias into every use and analyse a much larger tree per INSERT."""
    levels = [syslog_severity_level(severity) for severity in range(8)]
    receipt = "toStartOfHour(fromUnixTimestamp64Nano(received, 'UTC'))"
    stages: list[list[str]] = [
        ["peer", "received", "line", f"extractGroups(line, {_quote(_SYSLOG_FAST)}) AS g0"],
        [
            "peer",
            "received",
            "line",
            "if(length(g0[11]) > 64 OR length(g0[15]) > 64 OR length(g0[20]) > 64, "
            f"extractGroups(line, {_quote(_SYSLOG)}), g0) AS g",
        ],
        [
            "peer",
            "received",
            "line",
            "length(g) > 0 AS matched",
            "if(matched, toUInt16(g[1]), 0) AS pri",
            "matched AND g[2] != '' AS is_5424",
            # RFC 3164 (every alternative but the first) takes priorities below 192 only.
            "matched AND (is_5424 OR pri < 192) AS parsed",
            "if(is_5424, g[5], g[12] || g[16] || g[21]) AS pid",
            "if(is_5424, g[4], g[11] || g[15] || g[20]) AS tag",
            "if(is_5424, g[3], g[14]) AS hostname",
            "if(is_5424, g[8], g[13] || g[17] || g[18] || g[19] || g[22]) AS msg",
            "if(is_5424, g[6], '-') AS msgid",
            "if(is_5424, g[7], '-') AS sd",
            "if(is_5424, if(g[2] = '-', '', g[2]), g[10]) AS iso_stamp",
            "if(is_5424, '', g[9]) AS bsd_stamp",
        ],
        [
            "*",
            "indexOf(" + _array(_MONTHS) + ", substring(bsd_stamp, 1, 3)) AS bsd_month",
            "toUInt8OrZero(trimLeft(substring(bsd_stamp, 5, 2))) AS bsd_day",
            "toUInt8OrZero(substring(bsd_stamp, 8, 2)) AS bsd_hour",
            "toUInt8OrZero(substring(bsd_stamp, 11, 2)) AS bsd_minute",
            "toUInt8OrZero(substring(bsd_stamp, 14, 2)) AS bsd_second",
        ],
        [
            "*",
            f"makeDateTime(toYear({receipt}), bsd_month, bsd_day, bsd_hour, bsd_minute, "
            "bsd_second, 'UTC') AS bsd_moment",
        ],
        [
            "*",
            # A BSD stamp is in the receipt's year, or the year before when that would put
            # it more than a day after the receipt (hour-floored, as the Python parser's).
            "multiIf(NOT parsed, NULL, "
            "bsd_stamp != '' AND bsd_month > 0 AND bsd_day > 0 AND bsd_hour < 24 "
            "AND bsd_minute < 60 AND bsd_second < 60 AND toDayOfMonth(bsd_moment) = bsd_day, "
            "toInt64(toUnixTimestamp(if(bsd_moment > "
            f"{receipt} + toIntervalDay(1), bsd_moment - toIntervalYear(1), bsd_moment))) "
            "* 1000000000, "
            f"match(iso_stamp, {_quote(_RFC3339)}), "
            "toUnixTimestamp64Nano(parseDateTime64BestEffortOrNull(iso_stamp, 9, 'UTC')), "
            "NULL) AS ts_ns",
            "arrayConcat("
            f"if(parsed AND intDiv(pri, 8) < {len(FACILITIES)}, "
            f"[('facility', arrayElement({_array(FACILITIES)}, intDiv(pri, 8) + 1))], []), "
            "if(parsed AND if(is_5424, pid != '-', pid != ''), [('pid', pid)], []), "
            "if(parsed AND msgid != '-', [('msgid', msgid)], []), "
            f"if(parsed AND sd != '-', {_structured_data('sd')}, []), "
            f"if(parsed, [], [({_quote(PARSE_ERROR)}, {_quote(NOT_SYSLOG)})])) AS pairs",
        ],
    ]
    selected = {
        "tenant": "{tenant:String}",
        "service": (
            f"if(parsed AND tag != '' AND NOT (is_5424 AND tag = '-'), tag, "
            f"{_quote(UNKNOWN_SERVICE)})"
        ),
        "host": (
            "if(parsed AND hostname != '' AND NOT (is_5424 AND hostname = '-'), hostname, peer)"
        ),
        "level": f"if(parsed, arrayElement({_array(levels)}, bitAnd(pri, 7) + 1), 'unknown')",
        "source": "{source:String}",
        "timestamp": "fromUnixTimestamp64Nano(ifNull(ts_ns, received), 'UTC')",
        "observed_at": "now64(9, 'UTC')",
        "message": (
            f"if(parsed, if(is_5424 AND startsWith(msg, {_bytes_literal(_BOM.encode())}), "
            "substring(msg, 4), msg), line)"
        ),
        "trace_id": "''",
        "span_id": "''",
        "attributes": (
            "mapUpdate(mapFromArrays(arrayMap(p -> p.1, pairs), arrayMap(p -> p.2, pairs)), "
            "CAST(JSONExtract({extra:String}, 'Map(String, String)'), 'Map(String, String)'))"
        ),
        "label_keys": "CAST([], 'Array(String)')",
    }
    assert tuple(selected) == COLUMN_NAMES
    leading, trailing = _bytes_literal(FRAME_LEADING), _bytes_literal(FRAME_TRAILING)
    # S608 below: only our own SQL is pasted (the relation the store names and byte literals
    # built here); the values that come from outside (tenant, source, extra) are bound parameters.
    sql = (
        "SELECT peer, received, toValidUTF8(trim(TRAILING "  # noqa: S608
        f"{trailing} FROM trim(LEADING {leading} FROM frame))) AS line FROM {relation}"
    )
    sql = f"SELECT peer, received, line FROM ({sql}) WHERE line != ''"  # noqa: S608
    for columns in stages:
        sql = f"SELECT {', '.join(columns)}\nFROM ({sql})"
    projections = ",\n    ".join(f"{expr} AS {name}" for name, expr in selected.items())
    return f"SELECT\n    {projections}\nFROM ({sql})"
