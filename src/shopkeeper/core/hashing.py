"""Password hashing off the event loop.

argon2 spends ~100 ms of CPU per hash by design. Run on the request loop, 20 concurrent
registrations held every other request of the process for seconds (p99 5 ms -> 1.5 s). Here
hashes run in a small thread pool (argon2-cffi releases the GIL while it computes) at the lowest
CPU priority, and at most `_MAX_WAITING` wait for a thread: the rest wait asynchronously,
costing the loop nothing.
Registration and login are also rate-limited per client address, which bounds the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from shopkeeper.core.security import hash_password, verify_password

THREADS = max(1, min(4, os.cpu_count() or 1))
_MAX_WAITING = THREADS * 2
HASHING_NICENESS = 19


def _yield_to_requests() -> None:
    """Run this hashing thread at the lowest CPU priority (Linux applies `setpriority` on a
    thread id to that thread alone, and argon2's own worker threads inherit it): a hash then
    takes only CPU that requests leave idle. Without it, on a 2-CPU machine, 20 registrations'
    hashes (argon2 runs 4 threads each) took the CPUs from the event loop though off it."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)


_executor = ThreadPoolExecutor(
    max_workers=THREADS, thread_name_prefix="password-hash", initializer=_yield_to_requests
)
_admitted: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}

T = TypeVar("T")


async def _off_loop(function: Callable[..., T], *args: object) -> T:
    loop = asyncio.get_running_loop()
    admitted = _admitted.setdefault(loop, asyncio.Semaphore(_MAX_WAITING))
    async with admitted:
        return await loop.run_in_executor(_executor, function, *args)


async def hash_password_off_loop(password: str) -> str:
    return await _off_loop(hash_password, password)


async def verify_password_off_loop(password: str, password_hash: str | None) -> bool:
    return await _off_loop(verify_password, password, password_hash)
