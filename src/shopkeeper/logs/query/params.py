"""Loki's query parameters, parsed as Loki parses them: timestamps in ns, s or RFC 3339,
durations or float seconds for `step` and `since`, `direction`, `limit`."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.lexer import parse_duration_seconds

DEFAULT_LIMIT = 100
MAX_LIMIT = 5000
DEFAULT_SINCE_NS = 3600 * 10**9


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: int
    end: int


def now_ns() -> int:
    return time.time_ns()


def parse_timestamp(value: str | None, default: int) -> int:
    """Loki's parseTimestamp: float seconds, integer s (<= 10 digits) or ns, or RFC 3339."""
    if value is None or value == "":
        return default
    if "." in value:
        try:
            seconds = float(value)
        except ValueError:
            pass
        else:
            # Loki keeps milliseconds of a float timestamp.
            fraction, whole = math.modf(seconds)
            return int(whole) * 10**9 + round(fraction * 1000) * 10**6
    try:
        number = int(value)
    except ValueError:
        return _rfc3339_ns(value)
    return number * 10**9 if len(value) <= 10 else number


def _rfc3339_ns(value: str) -> int:
    text = value.strip()
    fraction_ns = 0
    if "." in text:
        head, _, rest = text.partition(".")
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        fraction_ns = int((digits + "000000000")[:9]) if digits else 0
        text = head + rest
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise QueryError(f'cannot parse "{value}" to a valid timestamp') from None
    if moment.tzinfo is None:
        raise QueryError(f'cannot parse "{value}" to a valid timestamp')
    return int(moment.timestamp()) * 10**9 + fraction_ns


def parse_seconds_or_duration(value: str, name: str) -> int:
    """`step`/`since`: a float number of seconds or a duration; returned in ns."""
    try:
        seconds = float(value)
    except ValueError:
        parsed = parse_duration_seconds(value)
        if parsed is None:
            raise QueryError(f'cannot parse "{value}" to a valid duration') from None
        seconds = parsed
    if math.isnan(seconds) or math.isinf(seconds):
        raise QueryError(f"cannot parse {name} {value!r}")
    return round(seconds * 1e9)


def parse_range(params: Mapping[str, str], max_range_ns: int) -> TimeRange:
    end = parse_timestamp(params.get("end"), now_ns())
    since = DEFAULT_SINCE_NS
    if params.get("since"):
        since = parse_seconds_or_duration(params["since"], "since")
    start = parse_timestamp(params.get("start"), end - since)
    if end < start:
        raise QueryError("end timestamp must not be before or equal to start time")
    if end - start > max_range_ns:
        raise QueryError(
            f"the query time range exceeds the limit (query length: {_go_duration(end - start)}, "
            f"limit: {_go_duration(max_range_ns)})"
        )
    return TimeRange(start, end)


def parse_limit(params: Mapping[str, str]) -> int:
    raw = params.get("limit")
    if not raw:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise QueryError(f'cannot parse "{raw}" to a valid limit') from None
    if limit <= 0:
        raise QueryError("limit must be a positive value")
    if limit > MAX_LIMIT:
        raise QueryError(
            f"max entries limit per query exceeded, limit > max_entries_limit "
            f"({limit} > {MAX_LIMIT})"
        )
    return limit


def parse_direction(params: Mapping[str, str]) -> bool:
    """True for backward (newest first, Loki's default)."""
    raw = (params.get("direction") or "backward").lower()
    if raw not in ("backward", "forward"):
        raise QueryError(f"invalid direction {params.get('direction')!r}")
    return raw == "backward"


def parse_step(params: Mapping[str, str], window: TimeRange) -> int:
    raw = params.get("step")
    if not raw:
        # Loki's default: a step that gives about 250 points, at least one second.
        seconds = max(math.floor((window.end - window.start) / 1e9 / 250), 1)
        return seconds * 10**9
    step = parse_seconds_or_duration(raw, "step")
    if step <= 0:
        raise QueryError(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
        )
    return step


def _go_duration(ns: int) -> str:
    seconds = ns / 1e9
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{secs:g}s"
    if hours or minutes:
        text = f"{int(minutes)}m" + text
    if hours:
        text = f"{int(hours)}h" + text
    return text


def max_range_ns(setting: str) -> int:
    return parse_seconds_or_duration(setting, "SHOPKEEPER_LOGS_MAX_QUERY_RANGE")
