"""The rows of stored batches, for live tail: the same columns a query reads back, computed in
Python from the batch (NDJSON by the rules `store.transform` gives ClickHouse)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from shopkeeper.logs.ingest.syslog import parse_fields
from shopkeeper.logs.records import (
    FLATTEN_DEPTH,
    HOST_FIELDS,
    LEVEL_FIELDS,
    MESSAGE_FIELDS,
    PARSE_ERROR,
    SERVICE_FIELDS,
    SPAN_ID_FIELDS,
    TIMESTAMP_FIELDS,
    TRACE_ID_FIELDS,
    UNKNOWN_SERVICE,
    normalize_level,
)
from shopkeeper.logs.store import Batch
from shopkeeper.logs.store.syslog_transform import FRAME_LEADING, FRAME_TRAILING, split_row

Row = dict[str, Any]
"""`ts` (ns), `message`, `service`, `host`, `level`, `source`, `trace_id`, `span_id`,
`attributes`, `label_keys`: the columns of `compiler.ROW_COLUMNS`."""


def batch_rows(batch: Batch, *, received_ns: int | None = None) -> list[Row]:
    return line_rows(batch, batch.payload.splitlines(), received_ns=received_ns)


def line_rows(batch: Batch, lines: Iterable[bytes], *, received_ns: int | None = None) -> list[Row]:
    """The rows of some of `batch`'s lines (blank lines have none)."""
    return [row for row in aligned_rows(batch, lines, received_ns=received_ns) if row is not None]


def aligned_rows(
    batch: Batch, lines: Iterable[bytes], *, received_ns: int | None = None
) -> list[Row | None]:
    """One row per line of `lines` (the tail decodes only those a session may match), None for
    a line that stores nothing (blank), so that rows and lines stay side by side."""
    received = received_ns or time.time_ns()
    if batch.format == "records":
        rows = [_record_row(line, received) if line else None for line in lines]
    elif batch.format == "syslog":
        # Syslog rows are tab-separated with \r, \n, \t and \\ escaped: a row is one line.
        rows = [_syslog_row(line) if line else None for line in lines]
    else:
        texts = (line.decode(errors="replace").strip() for line in lines)
        rows = [_json_line_row(text, received) if text else None for text in texts]
    for row in rows:
        if row is None:
            continue
        row["source"] = batch.source
        if batch.extra_attributes:
            row["attributes"].update(batch.extra_attributes)
    return rows


def _record_row(line: bytes, received: int) -> Row:
    record = orjson.loads(line)
    return {
        "ts": int(record["ts"]) or received,
        "message": record["message"],
        "service": record["service"],
        "host": record["host"],
        "level": record["level"],
        "trace_id": record["trace_id"],
        "span_id": record["span_id"],
        "attributes": dict(record["attributes"]),
        "label_keys": list(record["label_keys"]),
    }


def _syslog_row(line: bytes) -> Row | None:
    peer, received, frame = split_row(line)
    if not frame.lstrip(FRAME_LEADING).rstrip(FRAME_TRAILING):
        return None
    ts, service, host, level, message, attributes = parse_fields(frame, peer, received)
    row = _row(ts or received, message, attributes, {})
    row.update(service=service, host=host, level=level)
    return row


def _json_line_row(text: str, received: int) -> Row:
    document: Any = None
    if text.startswith("{"):
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError:
            document = None
    if not isinstance(document, dict):
        return _row(received, text, {}, {PARSE_ERROR: "not a JSON object"})
    fields: dict[str, str] = {}
    _flatten(document, "", 1, fields)
    picked: dict[str, str] = {}
    for name, candidates in (
        ("ts", TIMESTAMP_FIELDS),
        ("message", MESSAGE_FIELDS),
        ("level", LEVEL_FIELDS),
        ("service", SERVICE_FIELDS),
        ("host", HOST_FIELDS),
        ("trace_id", TRACE_ID_FIELDS),
        ("span_id", SPAN_ID_FIELDS),
    ):
        for candidate in candidates:
            if candidate in fields:
                picked[name] = fields.pop(candidate)
                break
    errors: dict[str, str] = {}
    ts = received
    if "ts" in picked:
        parsed = _timestamp_ns(picked["ts"])
        if parsed is None:
            errors[PARSE_ERROR] = f"unparseable timestamp: {picked['ts']}"
        else:
            ts = parsed
    row = _row(ts, picked.get("message", text), fields, errors)
    row["service"] = picked.get("service") or UNKNOWN_SERVICE
    row["host"] = picked.get("host", "")
    row["level"] = normalize_level(picked["level"]) if "level" in picked else "unknown"
    row["trace_id"] = picked.get("trace_id", "")
    row["span_id"] = picked.get("span_id", "")
    return row


def _row(ts: int, message: str, attributes: dict[str, str], errors: dict[str, str]) -> Row:
    return {
        "ts": ts,
        "message": message,
        "service": UNKNOWN_SERVICE,
        "host": "",
        "level": "unknown",
        "trace_id": "",
        "span_id": "",
        "attributes": {**attributes, **errors},
        "label_keys": [],
    }


def _flatten(value: dict[str, Any], prefix: str, depth: int, into: dict[str, str]) -> None:
    """As ClickHouse flattens a line: objects to dotted keys down to FLATTEN_DEPTH, strings
    unquoted, other values as their JSON text, nulls dropped. `value` is what orjson decodes
    (a JSON object is a `dict`, a string a `str`), so exact type checks suffice, and they are
    much cheaper than `isinstance(item, Mapping)` on the tail's hot path."""
    for key, item in value.items():
        name = prefix + key if prefix else key
        kind = type(item)
        if kind is str:
            into[name] = item
        elif kind is dict and depth < FLATTEN_DEPTH:
            _flatten(item, name + ".", depth + 1, into)
        elif item is not None:
            into[name] = orjson.dumps(item).decode()


def _timestamp_ns(text: str) -> int | None:
    """RFC 3339, or epoch seconds, milliseconds, microseconds or nanoseconds by magnitude."""
    if text[4:5] == "-" and text[:4].isdigit():
        # `2026-12-04...`: neither an int nor a float can be spelled so (a `-` in a number
        # comes first or after an `e`), so skip the two failed conversions.
        return _rfc3339_ns(text)
    try:
        number = int(text)
    except ValueError:
        try:
            real = float(text)
        except ValueError:
            return _rfc3339_ns(text)
        return int(_scaled(real))
    return int(_scaled(number))


def _scaled(number: float) -> float:
    size = abs(number)
    if size < 1e11:
        return number * 1_000_000_000
    if size < 1e14:
        return number * 1_000_000
    if size < 1e17:
        return number * 1_000
    return number


_DIGITS = re.compile(r"\d*")
"""The leading decimal digits of a fraction (a superscript digit, which `int` cannot read, ends
them rather than failing the line)."""


def _rfc3339_ns(text: str) -> int | None:
    value = text.strip().replace("Z", "+00:00").replace("z", "+00:00")
    fraction = 0
    head, dot, rest = value.partition(".")
    if dot:
        digits = _DIGITS.match(rest).group()  # type: ignore[union-attr]  # \d* always matches
        fraction = int((digits + "000000000")[:9]) if digits else 0
        value = head + rest[len(digits) :]
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000_000 + fraction
