"""Which sessions, and which lines of a stored batch, a tail session may match: found in the
batch's raw bytes by the sessions' needles (`TailFilter.needles`), with C-speed searches
(`bytes.find`), before anything is decoded. A line holding none of a session's needles cannot
match it and is never decoded for it; a batch no session may match costs a few searches.

Conservative on purpose: a line holding a `\\u` escape may spell any needle, so it is a
candidate for every session; a session without needles (`{service=~".+"}`) wants every line;
batches whose lines may not say what their bytes say (extra attributes, `\\r` line ends) are
wholly candidates. The sessions' own filters then decide on the decoded line."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shopkeeper.logs.store import Batch
from shopkeeper.logs.tail.session import TailSession

_ESCAPE = b"\\u"


def _opaque(batch: Batch) -> bool:
    """True when the raw bytes cannot rule a line out (see the module's docstring)."""
    return bool(batch.extra_attributes) or b"\r" in batch.payload


def _escaped(payload: bytes, lo: int, hi: int) -> bool:
    """Whether `payload[lo:hi]` holds a `\\u` escape. A backslash is looked for first: a
    one-byte search runs at memory speed (~0.01 ms a MiB), the two-byte one ~100 times slower,
    and most batches hold no backslash at all."""
    return payload.find(b"\\", lo, hi) >= 0 and payload.find(_ESCAPE, lo, hi) >= 0


def sessions_for(batch: Batch, sessions: Sequence[TailSession]) -> tuple[TailSession, ...]:
    """The sessions that may match some line of `batch`: those whose needles all occur in it.
    One search per needle (stopping at its first occurrence), none of them per line."""
    payload = batch.payload
    if _opaque(batch) or _escaped(payload, 0, len(payload)):
        return tuple(sessions)
    found: dict[bytes, bool] = {}
    wanting: list[TailSession] = []
    for session in sessions:
        for needle in session.filter.needles:
            present = found.get(needle)
            if present is None:
                present = found[needle] = needle in payload
            if not present:
                break
        else:
            wanting.append(session)
    return tuple(wanting)


@dataclass(slots=True)
class Candidates:
    """The lines of a batch some session may match, in the batch's order, and for each the
    sessions that may match it."""

    lines: list[bytes]
    sessions: list[tuple[TailSession, ...]]


def _lines_holding(payload: bytes, needle: bytes, lo: int, hi: int) -> dict[int, int]:
    """Start -> end offset of each line of `payload[lo:hi]` holding `needle` (lines end at
    `\n`; `lo` and `hi` are line boundaries)."""
    spans: dict[int, int] = {}
    find, rfind = payload.find, payload.rfind
    position = find(needle, lo, hi)
    while position >= 0:
        start = rfind(b"\n", lo, position) + 1 or lo
        end = find(b"\n", position + len(needle), hi)
        if end < 0:
            end = hi
        spans[start] = end
        position = find(needle, end + 1, hi)
    return spans


def _all_lines(payload: bytes, lo: int, hi: int) -> dict[int, int]:
    spans: dict[int, int] = {}
    start = lo
    for line in payload[lo:hi].split(b"\n"):
        end = start + len(line)
        if line.strip():
            spans[start] = end
        start = end + 1
    return spans


def region_end(payload: bytes, lo: int, size: int) -> int:
    """Where a region of about `size` bytes from `lo` ends: after a `\n`, or at the end."""
    newline = payload.find(b"\n", lo + size)
    return len(payload) if newline < 0 else newline + 1


def candidate_lines(
    batch: Batch, sessions: Sequence[TailSession], lo: int = 0, hi: int | None = None
) -> Candidates:
    """For each line of `batch` (of its bytes `lo:hi`, line boundaries) that some of
    `sessions` may match, those sessions. Each session's longest needle is searched through the
    region (once per distinct needle), its other needles only in the lines holding that one;
    lines holding no session's needles are never split out of the payload."""
    payload = batch.payload
    if hi is None:
        hi = len(payload)
    if _opaque(batch):
        lines = [line for line in payload[lo:hi].splitlines() if line.strip()]
        return Candidates(lines, [tuple(sessions)] * len(lines))
    everything: dict[int, int] | None = None
    holding: dict[bytes, dict[int, int]] = {}
    escaped = _lines_holding(payload, _ESCAPE, lo, hi) if _escaped(payload, lo, hi) else {}
    wanted: dict[int, list[TailSession]] = {}
    spans: dict[int, int] = {}
    for session in sessions:
        needles = session.filter.needles
        if not needles:
            if everything is None:
                everything = _all_lines(payload, lo, hi)
            mine = everything
        else:
            first, rest = needles[0], needles[1:]
            if first not in holding:
                holding[first] = _lines_holding(payload, first, lo, hi)
            mine = holding[first]
            if rest:
                find = payload.find
                mine = {
                    start: end
                    for start, end in mine.items()
                    if all(find(needle, start, end) >= 0 for needle in rest)
                }
            if escaped:
                mine = {**mine, **escaped}
        spans.update(mine)
        for start in mine:
            if (some := wanted.get(start)) is None:
                wanted[start] = [session]
            else:
                some.append(session)
    starts = sorted(wanted)
    return Candidates(
        [payload[start : spans[start]] for start in starts],
        [tuple(wanted[start]) for start in starts],
    )
