"""Group commit: batches of concurrent requests go into storage together, and each request
is answered as soon as the INSERT holding its lines returns.

While `concurrent_rounds` INSERTs run, newly arrived batches wait; the next INSERT takes all
of them (up to `batch_lines`). Under load that coalesces small requests into large parts;
alone, a request pays one INSERT and no timer. Lines accepted but not stored are bounded: past
`max_pending_lines` a request is refused with 429 before anything of it is queued."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from shopkeeper.logs.ingest.body import bodies_being_received
from shopkeeper.logs.ingest.errors import IngestOverloaded, StorageUnavailable
from shopkeeper.logs.store import Batch, LogStore, StoreUnavailable

log = structlog.get_logger(__name__)

LINGER_SECONDS = 0.05
"""Longest wait for bodies still being received before an INSERT starts."""
FILL_SECONDS = 0.25
"""Longest wait of a less than full round for the running one to finish (see
`_fill_beside_running`)."""
STOP_SECONDS = 30.0
SMALL_ROUND_LINES = 10_000
SMALL_ROUND_INTERVAL = 0.2
"""Rounds under SMALL_ROUND_LINES start at most this often: a stream of small pushes (a Loki
client's few lines every 100 ms) becomes a few parts a second, not one per request, at the
cost of at most 200 ms of latency."""


_Waiting = tuple[list[Batch], "asyncio.Future[None]"]
"""Batches of one request and the future its request awaits."""


class BatchSink(Protocol):
    """Where ingest hands batches: returns once they are durable (stored, or confirmed by the
    production buffer); raises `IngestOverloaded` or `StorageUnavailable` having kept none."""

    async def write(self, batches: list[Batch]) -> None: ...


class GroupCommitWriter:
    def __init__(
        self,
        store: LogStore,
        *,
        max_pending_lines: int,
        batch_lines: int,
        concurrent_rounds: int = 1,
        on_stored: Callable[[Sequence[Batch]], None] | None = None,
    ) -> None:
        self.store = store
        self.on_stored = on_stored
        """Told of every stored round (live tail); must return at once."""
        self.max_pending_lines = max_pending_lines
        self.batch_lines = batch_lines
        self.concurrent_rounds = max(1, concurrent_rounds)
        self.pending_lines = 0
        self._queue: deque[_Waiting] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_round_at = 0.0
        self._last_round_ended_at = float("-inf")
        self._requests_at_last_end = 0
        """Requests stored by or waiting at the end of the last round: how many the next round
        waits for while the load goes on (see `_linger`)."""
        self._rounds: dict[asyncio.Task[None], list[_Waiting]] = {}

    def busy(self) -> bool:
        """Whether requests wait while an INSERT runs: ingest has a backlog (at saturation,
        nearly always), and the live tail then yields more of the event loop."""
        return bool(self._rounds) and bool(self._queue)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="logs-group-commit")

    async def stop(self) -> None:
        """Stores what is queued (new writes are refused meanwhile), then stops. Requests still
        waiting after STOP_SECONDS are answered 503, not left hanging."""
        task, self._task = self._task, None
        if task is None:
            return
        deadline = asyncio.get_running_loop().time() + STOP_SECONDS
        while self.pending_lines > 0 and asyncio.get_running_loop().time() < deadline:
            self._wakeup.set()
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        leftovers = [*self._queue]
        for running, round_ in list(self._rounds.items()):
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            leftovers += round_
        self._queue.clear()
        self._settle(leftovers, StorageUnavailable("the log writer stopped"))

    async def write(self, batches: list[Batch]) -> None:
        lines = sum(batch.lines for batch in batches)
        if lines == 0:
            return
        if self._task is None:
            raise StorageUnavailable("the log writer is not running")
        # One request larger than the whole bound is still taken when nothing else waits.
        if self.pending_lines and self.pending_lines + lines > self.max_pending_lines:
            raise IngestOverloaded(retry_after=1, detail="Too many lines waiting to be stored")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.pending_lines += lines
        self._queue.append((batches, future))
        self.store.stage(batches)
        self._wakeup.set()
        await asyncio.shield(future)

    async def _run(self) -> None:
        slots = asyncio.Semaphore(self.concurrent_rounds)
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                await slots.acquire()
                if not self._queue:
                    slots.release()
                    break
                await self._fill_beside_running()
                await self._linger()
                round_ = self._take_round()
                self._last_round_at = asyncio.get_running_loop().time()
                running = asyncio.create_task(self._store(round_), name="logs-insert")
                self._rounds[running] = round_
                running.add_done_callback(self._rounds.pop)
                running.add_done_callback(lambda _: slots.release())
                running.add_done_callback(lambda _: self._wakeup.set())

    async def _store(self, round_: list[_Waiting]) -> None:
        batches = [batch for members, _ in round_ for batch in members]
        lines = sum(batch.lines for batch in batches)
        try:
            await self.store.insert_many(batches)
        except StoreUnavailable as exc:
            log.warning("logs_insert_failed", error=str(exc)[:500], lines=lines)
            self._settle(round_, StorageUnavailable())
        except Exception as exc:  # never let a round die with requests waiting
            log.exception("logs_insert_crashed", lines=lines)
            self._settle(round_, exc)
        else:
            self._settle(round_, None)
            if self.on_stored is not None:
                self.on_stored(batches)
        finally:
            self.pending_lines -= lines
            others = (r for task, r in self._rounds.items() if task is not asyncio.current_task())
            self._requests_at_last_end = len(round_) + len(self._queue) + sum(map(len, others))
            self._last_round_ended_at = asyncio.get_running_loop().time()

    async def _linger(self) -> None:
        """While other ingest bodies are still arriving, wait for them (briefly, and only while
        the round is small): one INSERT of all of them costs less than two.

        Under load (a round running, or one ended within LINGER_SECONDS) the round also waits
        for as many requests as were in flight when the last round ended: their clients were
        just answered and are sending again. Without it, 4 senders settled into rounds of 1
        and 3 bodies (the one that arrived during a round went alone, at once), twice the
        INSERTs, parts and merges of rounds of 4. A lone request does not wait."""
        deadline = asyncio.get_running_loop().time() + LINGER_SECONDS
        await self._wait_while(
            lambda: self._queued_lines() < SMALL_ROUND_LINES,
            self._last_round_at + SMALL_ROUND_INTERVAL,
        )
        # Every queued batch wakes this; a body that fails before it is queued (413, bad
        # gzip), or a client that stopped sending, costs the wait its remaining time at most.
        now = asyncio.get_running_loop().time()
        loaded = bool(self._rounds) or now - self._last_round_ended_at < LINGER_SECONDS
        expected = self._requests_at_last_end if loaded else 0
        await self._wait_while(
            lambda: (
                (bodies_being_received() > 0 or len(self._queue) < expected)
                and self._queued_lines() < self.batch_lines
            ),
            deadline,
        )

    async def _fill_beside_running(self) -> None:
        """A round starts beside a running one at once only with a full batch: a smaller one
        waits (up to FILL_SECONDS) for the running round to finish, growing meanwhile. Two
        small INSERTs at once cost more than one of both (each pays its query analysis and a
        part, and merges follow); a slow or stuck INSERT still holds the next one briefly."""
        await self._wait_while(
            lambda: bool(self._rounds) and self._queued_lines() < self.batch_lines,
            asyncio.get_running_loop().time() + FILL_SECONDS,
        )

    async def _wait_while(self, waiting: Callable[[], bool], deadline: float) -> None:
        """Wait, woken by every queued batch, while `waiting()` holds, until the loop time
        `deadline` at the latest."""
        loop = asyncio.get_running_loop()
        while waiting():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), remaining)

    def _queued_lines(self) -> int:
        return sum(batch.lines for batches, _ in self._queue for batch in batches)

    def _take_round(self) -> list[_Waiting]:
        round_ = [self._queue.popleft()]
        lines = sum(batch.lines for batch in round_[0][0])
        while self._queue:
            next_lines = sum(batch.lines for batch in self._queue[0][0])
            if lines + next_lines > self.batch_lines:
                break
            round_.append(self._queue.popleft())
            lines += next_lines
        return round_

    @staticmethod
    def _settle(round_: list[_Waiting], error: BaseException | None) -> None:
        for _, future in round_:
            if future.done():
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)
