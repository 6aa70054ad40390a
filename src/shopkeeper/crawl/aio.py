"""asyncio helpers of the worker loops."""

from __future__ import annotations

import asyncio


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Wakeup:
    """A wake-up call for one waiting loop. `fire()` wakes the current `wait()`, or makes the
    next one return at once (a call made while the loop was busy is not lost). Cheaper than an
    Event under `wait_for`: a wait costs one future and one timer, no task."""

    def __init__(self) -> None:
        self._waiter: asyncio.Future[None] | None = None
        self._pending = False

    def fire(self) -> None:
        self._pending = True
        if self._waiter is not None:
            _resolve(self._waiter)

    async def wait(self, seconds: float) -> None:
        """Until fired (since the previous wait returned) or `seconds` pass."""
        if not self._pending:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(seconds, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        self._pending = False
