"""Run the outbox in a test, deterministically and in-process."""

from __future__ import annotations

from shopkeeper.core.messaging.handlers import load_handlers
from shopkeeper.core.messaging.relay import drain
from shopkeeper.core.runtime import Runtime


async def drain_events(runtime: Runtime) -> int:
    """Relay and handle every pending outbox event, and the events those handlers record, until
    none is left. Handler errors propagate. Returns how many events were handled."""
    load_handlers()
    return await drain(runtime)
