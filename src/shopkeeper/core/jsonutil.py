"""JSON encoding for responses, events and caches (orjson: fast, knows UUID and datetime)."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def loads(value: bytes | str) -> Any:
    return orjson.loads(value)
