"""The answers of the Loki API: result shapes, statistics, and numbers and times printed
as Loki prints them."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    started: float = field(default_factory=time.perf_counter)
    lines: int = 0
    bytes: int = 0
    entries: int = 0

    def as_loki(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        summary = {
            "bytesProcessedPerSecond": int(self.bytes / elapsed) if elapsed > 0 else 0,
            "linesProcessedPerSecond": int(self.lines / elapsed) if elapsed > 0 else 0,
            "totalBytesProcessed": self.bytes,
            "totalLinesProcessed": self.lines,
            "execTime": elapsed,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": self.entries,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": self.entries,
            "totalStructuredMetadataBytesProcessed": 0,
        }
        return {"summary": summary, "querier": {"store": {}}, "ingester": {}, "cache": {}}


@dataclass(frozen=True, slots=True)
class Result:
    result_type: str  # "streams" | "matrix" | "vector" | "scalar"
    result: Any
    stats: dict[str, Any]

    def as_loki(self) -> dict[str, Any]:
        data: dict[str, Any] = {"resultType": self.result_type, "result": self.result}
        if self.result_type == "streams":
            # Labels always come categorized (stream labels apart from structured metadata and
            # parsed labels, in a value's third element); Loki 3 says so with this flag.
            data["encodingFlags"] = ["categorize-labels"]
        data["stats"] = self.stats
        return {"status": "success", "data": data}


def format_value(value: float) -> str:
    """Go's strconv.FormatFloat(v, 'f', -1, 64), as Loki prints sample values."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        from decimal import Decimal

        text = format(Decimal(text), "f")
    return text


def format_time(ns: int) -> float | int:
    seconds = ns / 1e9
    rounded = round(seconds, 3)
    return int(rounded) if rounded == int(rounded) else rounded
