"""One tail session: its query compiled once into a Python filter, and a bounded buffer of
lines waiting to be sent. A session that falls behind drops lines (and says which, as Loki's
`dropped_entries`); it never makes anyone else wait."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from shopkeeper.logs.query import ast
from shopkeeper.logs.query.compiler import anchored
from shopkeeper.logs.query.parser import python_regex
from shopkeeper.logs.query.pipeline import Entry, Pipeline, compile_pipeline, entry_from_row
from shopkeeper.logs.tail.decode import Row

BUFFER_LINES = 1000
"""Lines a session holds for a client that has not read them yet; past it, lines drop."""
MAX_DROPPED_PER_FRAME = 10_000
"""Dropped lines named in one frame (each by its labels and timestamp)."""


def _matcher(matcher: ast.Matcher) -> Callable[[Entry], bool]:
    name, op, value = matcher.name, matcher.op, matcher.value
    if op == "=":
        return lambda entry: (entry.get(name) or "") == value
    if op == "!=":
        return lambda entry: (entry.get(name) or "") != value
    regex = re.compile(python_regex(anchored(value)))
    if op == "=~":
        return lambda entry: regex.match(entry.get(name) or "") is not None
    return lambda entry: regex.match(entry.get(name) or "") is None


@dataclass(frozen=True, slots=True)
class TailFilter:
    """A log query as Python: the selector's matchers, then the whole pipeline."""

    matchers: tuple[Callable[[Entry], bool], ...]
    pipeline: Pipeline

    @classmethod
    def compile(cls, query: ast.LogQuery) -> TailFilter:
        return cls(tuple(map(_matcher, query.matchers)), compile_pipeline(query.stages))

    def run(self, row: Row) -> Entry | None:
        entry = entry_from_row(row)
        if all(match(entry) for match in self.matchers) and self.pipeline.run(entry):
            return entry
        return None


@dataclass(eq=False)
class TailSession:
    tenant: str
    filter: TailFilter
    capacity: int = BUFFER_LINES
    dropped_total: int = 0
    """Matching lines dropped and named (past the per-frame cap, not even matched)."""
    _pending: deque[Entry] = field(default_factory=deque)
    _dropped: list[dict[str, Any]] = field(default_factory=list)
    _ready: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, rows: Iterable[Row]) -> None:
        """Takes the matching lines of `rows` without waiting (called by the hub)."""
        for row in rows:
            if len(self._pending) >= self.capacity and len(self._dropped) >= MAX_DROPPED_PER_FRAME:
                # Nothing more can be sent or named before the client reads: spend nothing.
                continue
            entry = self.filter.run(row)
            if entry is None:
                continue
            if len(self._pending) < self.capacity:
                self._pending.append(entry)
                continue
            self.dropped_total += 1
            if len(self._dropped) < MAX_DROPPED_PER_FRAME:
                self._dropped.append({"labels": entry.stream, "timestamp": str(entry.ts)})
        if self._pending or self._dropped:
            self._ready.set()

    def missed(self, lines: int) -> None:
        """`lines` of the tenant were stored but not examined (the feed was flooded): they
        may have matched, so they are reported dropped, without labels."""
        room = MAX_DROPPED_PER_FRAME - len(self._dropped)
        stamp = str(time.time_ns())
        self._dropped.extend({"labels": {}, "timestamp": stamp} for _ in range(min(lines, room)))
        self.dropped_total += lines
        if lines:
            self._ready.set()

    async def wait(self) -> None:
        await self._ready.wait()

    def take(self) -> tuple[list[Entry], list[dict[str, Any]]]:
        """The lines waiting (oldest first) and the dropped ones since the last take."""
        entries = sorted(self._pending, key=lambda entry: entry.ts)
        dropped = self._dropped
        self._pending = deque()
        self._dropped = []
        self._ready.clear()
        return entries, dropped
