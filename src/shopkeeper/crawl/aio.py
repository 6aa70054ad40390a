"""asyncio helpers of the worker loops."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def wait_any(stopping: asyncio.Task[Any], other: Any | None, *, seconds: float) -> None:
    """Until `stopping` or `other` (an awaitable) completes, or `seconds` pass."""
    waiters: set[asyncio.Future[Any]] = {stopping}
    extra: asyncio.Task[Any] | None = None
    if other is not None:
        extra = asyncio.ensure_future(other)
        waiters.add(extra)
    await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    if extra is not None and not extra.done():
        extra.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await extra
