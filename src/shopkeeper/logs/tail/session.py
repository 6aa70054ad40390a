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
from shopkeeper.logs.records import UNKNOWN_SERVICE
from shopkeeper.logs.tail.decode import Row

BUFFER_LINES = 1000
"""Lines a session holds for a client that has not read them yet; past it, lines drop."""
MAX_DROPPED_PER_FRAME = 100
"""Dropped lines named in one frame (each by its labels and timestamp). Loki's format names
each one; in a flood, building and encoding thousands per frame for each session cost ingest
more than the tail itself (bench/RESULTS.md, 18:47), so past this a frame names no more."""


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


_NEEDLE_BYTES = re.compile(r"[ !#-.0-\[\]-~]+")
"""Printable ASCII without `"`, `/` and `\\`: text a JSON encoder writes as it is (a `\\u`
escape can write anything, so a line holding one is always decoded, see `candidates`)."""
_RAW_LABELS = frozenset({"service", "host"})
"""Labels whose value a stored line holds as it is, in every format. Not the others: the level
is normalised, the source is the batch's, and an attribute may be derived (syslog's
`facility` from the priority number) or re-spelled (a JSON array or number)."""


def _raw_needle(value: str) -> bytes | None:
    """`value` as bytes that a stored line must hold to yield it, or None when it need not
    (a number can be re-spelled by the JSON round trip: `1e2` is stored as `100.0`)."""
    if not value or not _NEEDLE_BYTES.fullmatch(value):
        return None
    try:
        float(value)
    except ValueError:
        return value.encode()
    return None


def required_needles(query: ast.LogQuery) -> tuple[bytes, ...]:
    """Byte strings every stored line this query can match contains, in its raw JSON: the
    values of `=` selector matchers and the needles of `|=` line filters that come before any
    `line_format`. Found cheaply in the raw bytes, they let the feed skip decoding lines that
    no session can match; a line holding them all is still decoded and matched in full."""
    needles: list[bytes] = []
    for matcher in query.matchers:
        if matcher.op != "=" or matcher.name not in _RAW_LABELS:
            continue
        if matcher.name == "service" and matcher.value == UNKNOWN_SERVICE:
            continue  # the service of a line that names none: not in its text
        if (needle := _raw_needle(matcher.value)) is not None:
            needles.append(needle)
    for stage in query.stages:
        if isinstance(stage, ast.LineFormat):
            break  # later line filters see the formatted line, not the stored one
        needle = _raw_needle(stage.value) if isinstance(stage, ast.LineFilter) else None
        if needle is not None and isinstance(stage, ast.LineFilter) and stage.op == "|=":
            needles.append(needle)
    return tuple(sorted(set(needles), key=len, reverse=True))


@dataclass(frozen=True, slots=True)
class TailFilter:
    """A log query as Python: the selector's matchers, then the whole pipeline; and `needles`,
    byte strings each raw line it can match contains (longest first)."""

    matchers: tuple[Callable[[Entry], bool], ...]
    pipeline: Pipeline
    needles: tuple[bytes, ...] = ()

    @classmethod
    def compile(cls, query: ast.LogQuery) -> TailFilter:
        return cls(
            tuple(map(_matcher, query.matchers)),
            compile_pipeline(query.stages),
            required_needles(query),
        )

    def run(self, base: Entry) -> Entry | None:
        """`base` (shared by every session offered the line, never changed) if it matches and
        the pipeline has nothing to change; a copy the pipeline ran on if it matches; else None."""
        if not all(match(base) for match in self.matchers):
            return None
        if not self.pipeline.steps:
            return base
        entry = Entry(base.ts, base.line, dict(base.stream), dict(base.metadata))
        return entry if self.pipeline.run(entry) else None


def row_entries(rows: Iterable[Row]) -> list[Entry]:
    """Rows as the entries sessions are offered: built once per line, whatever the sessions."""
    return [entry_from_row(row) for row in rows]


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

    def offer(self, entries: Iterable[Entry]) -> None:
        """Takes the matching lines of `entries` (see `row_entries`) without waiting (called by
        the hub)."""
        for base in entries:
            if len(self._pending) >= self.capacity and len(self._dropped) >= MAX_DROPPED_PER_FRAME:
                # Nothing more can be sent or named before the client reads: spend nothing.
                continue
            entry = self.filter.run(base)
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
