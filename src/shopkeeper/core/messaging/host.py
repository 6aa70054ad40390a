"""What the scheduler, the dispatcher and the relay need from the process that runs them.

`core.runtime.Runtime` satisfies these Protocols; messaging never imports it, so the arrows
point one way: runtime -> messaging.
"""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import Database
from shopkeeper.core.messaging.broker import JobQueue
from shopkeeper.core.settings import Settings


class Host(Protocol):
    """Settings and a database: enough for periodic jobs' leases."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...


class DispatchHost(Host, Protocol):
    """Also makes the context a handler receives, around the dispatcher's session."""

    def handler_context(self, session: AsyncSession) -> object: ...


class RelayHost(DispatchHost, Protocol):
    """Also the broker the relay publishes to."""

    @property
    def jobs(self) -> JobQueue: ...
