"""The feed of one process's tail sessions (no Redis): stored batches in, matching lines out to
the sessions, on the event loop that also serves ingest, so within a share of its time: a
small one (`BUSY_SHARE`) while the writer has work, more while it is idle.

Fair between sessions, so that a session whose filter matches few lines (one probe line every
second) does not lose them because other sessions' filters match a flood:

- A batch is first *sorted*: which sessions may match some line of it, by their needles in
  its raw bytes (`candidates.sessions_for`). A batch no session may match is done with; small
  batches are sorted first.
- Sorted batches wait in *lanes*, one per set of sessions they may match, served round robin
  a region of bytes at a time: a lane waits for at most a region of each other lane, never for
  a whole flood. A small batch alone in its lane (the probe's line) is served first, even
  during the feed's pause.
- Shedding is per batch, reported to the sessions that may match it only: a batch that waited
  past `MAX_WAIT_SECONDS` (or is still being fed then) while newer ones wait in its lane, and
  the largest batch when more than `OUTBOX_BYTES` wait. A flood sheds itself; a small batch is
  never pushed out by big ones, nor shed because the event loop was held up.
- Within a batch (a region of `REGION_BYTES` per turn), only the lines some session may match
  are decoded, once for all sessions, and offered to just those sessions
  (`candidates.candidate_lines`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass

import structlog

from shopkeeper.logs.query.pipeline import Entry, entry_from_row
from shopkeeper.logs.store import Batch
from shopkeeper.logs.tail.candidates import candidate_lines, region_end, sessions_for
from shopkeeper.logs.tail.decode import aligned_rows
from shopkeeper.logs.tail.session import TailSession

log = structlog.get_logger(__name__)

OUTBOX_BYTES = 16 * 1024 * 1024
"""Stored bytes waiting for the feed at most (about what 0.5 s of the fastest ingest measured
stores: batches are shed by age first, and sorted under the feed's share, not here); past it
the largest batch is shed."""
REGION_BYTES = 32 * 1024
"""Bytes of a batch (~170 application lines) searched, decoded and offered between two pauses:
a lane's turn in the round robin."""
BUSY_SHARE = 0.02
"""Of the event loop's time, the most the feed takes while the writer has work (an INSERT
running or requests waiting for one), the writer's side (`put`) included. At saturation ingest
is a chain of INSERTs, each parsed on both CPUs, and whatever the loop's thread takes beside
them delays the chain about twice over (issue 14: tails may cost ingest <= 10%; measured in
bench/RESULTS.md, a share of 0.1 cost ~21%, 0.05 ~10-16%)."""
IDLE_SHARE = 0.1
"""The most the feed takes while the writer is idle: time ingest is not using."""
SMALL_BATCH_BYTES = 16 * 1024
"""A batch this small is sorted into its lane as it is handed over (a few searches of a few
lines cost less than queueing it), and, alone in its lane, is served ahead of the round robin
(see `LocalFeed._quick_lane`); a larger one waits in the intake for the feed's turn."""
MAX_PAUSE_SECONDS = 0.05
"""The longest pause between two turns, while the feed owes less than `MAX_OWED_SECONDS`: a
turn that took long (the thread preempted by the INSERTs' threads, a collection) owes a long
pause, paid in pauses of at most this with turns between, so that a one-line batch arriving
then is not held for most of a second (and shed as late). Over any longer stretch the feed
still keeps to its share."""
MAX_OWED_SECONDS = 1.0
"""Pause owed past this is paid at once: the share holds over any stretch of a few seconds. A
small batch alone in its lane still interrupts it (see `_quick_lane`)."""
HARD_OUTBOX_BYTES = 4 * OUTBOX_BYTES
"""Past this `put` itself sheds (searching on ingest's path): only when the feed has not had a
turn for a long while, e.g. the event loop held up by something else."""
MAX_WAIT_SECONDS = 0.5
"""A stored batch still waiting for the feed after this long, with newer ones behind it in its
lane, is shed (reported dropped): a flooded lane keeps the lines it does deliver timely."""


@dataclass(eq=False, slots=True)
class _Work:
    """A sorted batch in its lane, fed a region of its bytes at a time from `offset`."""

    batch: Batch
    queued_at: float
    sessions: tuple[TailSession, ...]
    offset: int = 0

    def lines_left(self) -> int:
        """Lines not examined yet (any of them may have matched)."""
        if not self.offset:
            return self.batch.lines
        payload = self.batch.payload
        return payload.count(b"\n", self.offset) + (not payload.endswith(b"\n"))


Lane = frozenset[TailSession]


class LocalFeed:
    def __init__(
        self,
        sessions_of: Callable[[str], Collection[TailSession]],
        ingest_busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self._sessions_of = sessions_of
        self.ingest_busy = ingest_busy
        """Whether the writer has work now: the feed then keeps to `BUSY_SHARE`."""
        self._intake: list[tuple[float, Batch]] = []
        self._lanes: dict[Lane, deque[_Work]] = {}
        self._bytes = 0
        self._ready = asyncio.Event()
        self._quick = asyncio.Event()
        self.missed_batches = 0
        self._spent = 0.0
        """Seconds spent in `put` (searching a batch it sheds, to tell only the sessions that
        may match it) not yet paid for by the feed's pauses: in a flood, most batches are shed
        there, and that search was outside the share (~0.05 of a CPU at 150k lines/s)."""

    # -- the writer's side ---------------------------------------------------------------------

    def put(self, batch: Batch) -> None:
        """Takes a stored batch without waiting, and without searching it: `put` runs on ingest's
        critical path (between an INSERT's end and its requests' answers), so shedding past
        `OUTBOX_BYTES`, with the searches that tell which sessions lose lines, waits for the
        feed's next turn and its share. Only past `HARD_OUTBOX_BYTES` (the feed held up for a
        long while) does `put` shed itself, to keep memory bounded."""
        began = time.perf_counter()
        try:
            self._put(batch)
        finally:
            self._spent += time.perf_counter() - began

    def _put(self, batch: Batch) -> None:
        size = len(batch.payload)
        self._bytes += size
        self._intake.append((time.monotonic(), batch))
        if self._bytes > HARD_OUTBOX_BYTES:
            self._shed_excess(HARD_OUTBOX_BYTES)
            if not self._intake or self._intake[-1][1] is not batch:
                return  # shed itself
        if size <= SMALL_BATCH_BYTES:
            self._sort(*self._intake.pop())
            self._quick.set()
        self._ready.set()

    def _shed_excess(self, limit: int) -> None:
        """While more than `limit` bytes wait, the largest batch waiting is shed: a flood's
        megabytes go, a one-line batch stays."""
        while self._bytes > limit:
            victim = self._largest_waiting()
            if victim is None:
                return
            where, largest = victim
            if isinstance(where, int):
                del self._intake[where]
                self._bytes -= len(largest.payload)
                sessions = sessions_for(largest, tuple(self._sessions_of(largest.tenant)))
                self._missed(largest.tenant, sessions, largest.lines)
            else:
                self._shed(where, next(w for w in self._lanes[where] if w.batch is largest))

    def _largest_waiting(self) -> tuple[int | Lane, Batch] | None:
        """The largest batch waiting, with where it waits: its index in the intake, or its lane."""
        found: tuple[int | Lane, Batch] | None = None
        for index, (_, batch) in enumerate(self._intake):
            if found is None or len(batch.payload) > len(found[1].payload):
                found = (index, batch)
        for lane, queue in self._lanes.items():
            for work in queue:
                if found is None or len(work.batch.payload) > len(found[1].payload):
                    found = (lane, work.batch)
        return found

    # -- the feed --------------------------------------------------------------------------------

    async def run(self) -> None:
        sorted_last = False
        owed = 0.0  # seconds of pause the feed's turns have earned the rest of the event loop
        while True:
            if not self._intake and not self._lanes:
                idle_since = time.perf_counter()
                while not self._intake and not self._lanes:
                    self._ready.clear()
                    await self._ready.wait()
                owed = max(0.0, owed - (time.perf_counter() - idle_since))
            began = time.perf_counter()
            try:
                self._shed_excess(OUTBOX_BYTES)
                sorted_last = self._turn(sorted_last)
            except Exception:  # a batch we cannot decode is not worth stopping the feed for
                log.exception("logs_tail_feed_failed")
            spent, self._spent = self._spent, 0.0
            share = BUSY_SHARE if self.ingest_busy() else IDLE_SHARE
            owed += (time.perf_counter() - began + spent) * (1 / share - 1)
            pause = max(min(owed, MAX_PAUSE_SECONDS), owed - MAX_OWED_SECONDS)
            owed -= pause
            owed += await self._pause(pause)

    def _turn(self, sorted_last: bool) -> bool:
        """One turn of work; returns whether it sorted a batch. A small batch alone in its lane
        goes first; otherwise sorting and the lanes take turns, so a flood still arriving does
        not starve the lanes."""
        if not self._intake and not self._lanes:
            return False
        quick = self._quick_lane()
        sorting = quick is None and bool(self._intake) and not (sorted_last and self._lanes)
        if sorting:
            index = min(range(len(self._intake)), key=lambda i: len(self._intake[i][1].payload))
            self._sort(*self._intake.pop(index))
        else:
            self._feed_lane(quick if quick is not None else next(iter(self._lanes)))
        return sorting

    async def _pause(self, seconds: float) -> float:
        """Sleeps `seconds`, cut short when a small batch arrives alone in its lane: serving it
        costs next to nothing (a few lines, and each came with a request that cost ingest more),
        and the pause not taken stays owed. Returns the seconds not slept."""
        if self._quick_lane() is not None:
            return seconds
        self._quick.clear()
        began = time.perf_counter()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quick.wait(), seconds)
        return max(0.0, seconds - (time.perf_counter() - began))

    def _quick_lane(self) -> Lane | None:
        """A lane holding one small batch, not yet started (a probe's line, a few lines of a
        rarely matched service): served ahead of the round robin. A lane where small batches
        pile up is a flood and waits its turn like any other."""
        for lane, queue in self._lanes.items():
            head = queue[0]
            if len(queue) == 1 and not head.offset and len(head.batch.payload) <= SMALL_BATCH_BYTES:
                return lane
        return None

    def _sort(self, queued_at: float, batch: Batch) -> None:
        """Puts a batch waiting in the intake in its lane, or drops it if no session may match
        it. The smallest is sorted first: a one-line batch does not wait while megabytes are
        searched."""
        self._bytes -= len(batch.payload)
        sessions = sessions_for(batch, tuple(self._sessions_of(batch.tenant)))
        if not sessions:
            return
        lane = frozenset(sessions)
        self._lanes.setdefault(lane, deque()).append(_Work(batch, queued_at, sessions))
        self._bytes += len(batch.payload)

    def _feed_lane(self, lane: Lane) -> None:
        """A region of the lane's oldest batch, then the lane goes to the back."""
        work = self._lanes[lane][0]
        if time.monotonic() - work.queued_at > MAX_WAIT_SECONDS and len(self._lanes[lane]) > 1:
            # Too late, and newer batches wait behind it: its sessions are flooded, so it is
            # shed with a marker rather than delivered seconds late. Late with nothing behind
            # it (the event loop was held up, not the lane), it is still delivered.
            self._shed(lane, work)
            return
        live = self._sessions_of(work.batch.tenant)
        payload = work.batch.payload
        end = region_end(payload, work.offset, REGION_BYTES)
        sessions = [session for session in work.sessions if session in live]
        candidates = candidate_lines(work.batch, sessions, work.offset, end)
        work.offset = end
        offered: dict[TailSession, list[Entry]] = {}
        rows = aligned_rows(work.batch, candidates.lines)
        for row, some in zip(rows, candidates.sessions, strict=True):
            if row is None:
                continue
            entry = entry_from_row(row)
            for session in some:
                offered.setdefault(session, []).append(entry)
        for session, entries in offered.items():
            session.offer(entries)
        queue = self._lanes.pop(lane)
        if work.offset >= len(payload) or not sessions:
            queue.popleft()
            self._forget(work)
        if queue:
            self._lanes[lane] = queue  # to the back of the round robin

    def _shed(self, lane: Lane, work: _Work) -> None:
        """`work`'s lines not yet offered reach its sessions as dropped, unexamined."""
        queue = self._lanes[lane]
        queue.remove(work)
        if not queue:
            del self._lanes[lane]
        self._forget(work)
        self.missed_batches += 1
        log.info("logs_tail_missed_batch", tenant=work.batch.tenant, lines=work.batch.lines)
        live = self._sessions_of(work.batch.tenant)
        left = work.lines_left()
        for session in work.sessions:
            if session in live:
                session.missed(left)

    def _forget(self, work: _Work) -> None:
        self._bytes -= len(work.batch.payload)

    def _missed(self, tenant: str, sessions: Collection[TailSession], lines: int) -> None:
        self.missed_batches += 1
        log.info("logs_tail_missed_batch", tenant=tenant, lines=lines)
        for session in tuple(sessions):
            session.missed(lines)
