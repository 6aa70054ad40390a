"""Shared set-up for tests of background work: a real SMTP server, fast-polling settings and a
poll-until helper."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest

from shopkeeper.core.settings import Settings


@dataclass
class SmtpSink:
    """What a real SMTP server received. `on_data` may answer instead of accepting."""

    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    on_data: Callable[[int], str | None] | None = None
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.attempts += 1
            attempt = self.attempts
        if self.on_data is not None:
            answer = self.on_data(attempt)
            if answer is not None:
                return answer
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=default))
        return "250 Message accepted for delivery"


def background_settings(settings_factory: Callable[..., Settings], **overrides: Any) -> Settings:
    """Fast polling and retries, so that tests of background work take milliseconds."""
    values: dict[str, Any] = {
        "outbox_poll_seconds": 0.1,
        "scheduler_tick_seconds": 0.1,
        "job_retry_base_seconds": 0.2,
        "job_max_retries": 3,
        "mail_claim_timeout_seconds": 1.0,
        "log_level": "INFO",
    }
    values.update(overrides)
    return settings_factory(**values)


async def eventually(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    timeout: float = 30,
    what: str = "condition",
) -> None:
    """Wait until `check()` is true; background work has no completion signal to await."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def postgres_only(backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("multi-process production mode is tested on PostgreSQL")


def sqlite_only(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("embedded mode is tested on its own database, SQLite")
