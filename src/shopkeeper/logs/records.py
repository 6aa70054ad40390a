"""The log record every protocol is mapped to, and the rules shared by all of them: level names,
OTel severity numbers, which field names mean what, nested attributes flattened with dots."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from shopkeeper.core.jsonutil import dumps

LEVELS: Final = ("trace", "debug", "info", "warn", "error", "fatal", "unknown")
UNKNOWN_SERVICE: Final = "unknown_service"
"""The service of a line that names none (Loki's name for the same case)."""

SOURCES: Final = ("ndjson", "loki", "elasticsearch", "otlp", "syslog", "internal")

# Lower-cased spelling -> level. Pino/bunyan's numeric levels are included: those loggers
# write `"level": 30`, and "30" would otherwise be `unknown`.
LEVEL_ALIASES: Final[Mapping[str, str]] = {
    **{name: name for name in LEVELS},
    "trc": "trace",
    "dbg": "debug",
    "d": "debug",
    "inf": "info",
    "information": "info",
    "informational": "info",
    "notice": "info",
    "i": "info",
    "warning": "warn",
    "wrn": "warn",
    "w": "warn",
    "err": "error",
    "eror": "error",
    "e": "error",
    "critical": "fatal",
    "crit": "fatal",
    "crt": "fatal",
    "alert": "fatal",
    "emerg": "fatal",
    "emergency": "fatal",
    "panic": "fatal",
    "ftl": "fatal",
    "f": "fatal",
    "10": "trace",
    "20": "debug",
    "30": "info",
    "40": "warn",
    "50": "error",
    "60": "fatal",
}

# Field names of a JSON line (NDJSON, Elasticsearch documents with their ECS names), first
# present wins; after flattening, `{"service": {"name": "x"}}` and `"service.name"` are alike.
TIMESTAMP_FIELDS: Final = ("timestamp", "@timestamp", "ts", "time")
MESSAGE_FIELDS: Final = ("message", "msg", "log")
LEVEL_FIELDS: Final = ("level", "severity", "log.level")
SERVICE_FIELDS: Final = ("service", "service.name")
HOST_FIELDS: Final = ("host", "host.name", "hostname")
TRACE_ID_FIELDS: Final = ("trace_id", "trace.id")
SPAN_ID_FIELDS: Final = ("span_id", "span.id")

PARSE_ERROR: Final = "_parse_error"
"""Attribute naming why a line was stored raw."""

FLATTEN_DEPTH: Final = 3
"""Levels of nested objects flattened into dotted keys; deeper objects are kept as JSON text."""


def normalize_level(value: object) -> str:
    if value is None:
        return "unknown"
    return LEVEL_ALIASES.get(str(value).strip().lower(), "unknown")


def otel_severity_level(number: int) -> str:
    """OTel SeverityNumber ranges: 1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR,
    21-24 FATAL; 0 is unspecified."""
    if number <= 0:
        return "unknown"
    if number > 24:
        return "fatal"
    return ("trace", "debug", "info", "warn", "error", "fatal")[(number - 1) // 4]


def syslog_severity_level(severity: int) -> str:
    """RFC 5424 severities 0-7: emerg, alert, crit -> fatal; err; warning; notice, info; debug."""
    return ("fatal", "fatal", "fatal", "error", "warn", "info", "info", "debug")[severity & 7]


def flatten(value: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Nested objects become dotted keys; scalars and arrays become their JSON text (strings
    unquoted); nulls are dropped."""
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            yield from flatten(item, f"{name}.")
        elif isinstance(item, str):
            yield name, item
        elif item is None:
            continue
        elif isinstance(item, bool):
            yield name, "true" if item else "false"
        elif isinstance(item, int | float):
            yield name, repr(item) if isinstance(item, float) else str(item)
        else:
            yield name, dumps(item).decode()


@dataclass(slots=True)
class LogRecord:
    """One normalised line. `timestamp_ns` 0 means "when received"."""

    message: str
    timestamp_ns: int = 0
    service: str = UNKNOWN_SERVICE
    host: str = ""
    level: str = "unknown"
    trace_id: str = ""
    span_id: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    label_keys: list[str] = field(default_factory=list)
    """Keys of `attributes` that arrived as stream labels or resource attributes."""
