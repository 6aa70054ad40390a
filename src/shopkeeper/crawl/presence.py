"""A worker's row in `crawl_workers`: registered at start, its heartbeat (which also re-checks
the worker's key: a revoked key stops the worker as SIGTERM would), removed at a clean stop."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable

import structlog
from sqlalchemy import delete, update

from shopkeeper.core.db import utcnow
from shopkeeper.core.errors import DomainError
from shopkeeper.crawl.auth import authenticate_worker
from shopkeeper.crawl.context import CrawlContext
from shopkeeper.crawl.models import Worker

log = structlog.get_logger("shopkeeper.crawl.worker")


class WorkerPresence:
    def __init__(
        self,
        context: CrawlContext,
        *,
        id: uuid.UUID,
        name: str,
        capacity: int,
        key: str | None,
    ) -> None:
        self.context = context
        self.id = id
        self.name = name
        self.capacity = capacity
        self.key = key

    async def register(self) -> None:
        async with self.context.db.session() as session:
            session.add(
                Worker(
                    id=self.id,
                    name=self.name,
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    capacity=self.capacity,
                    in_flight=0,
                )
            )
            await session.commit()

    async def unregister(self) -> None:
        async with self.context.db.session() as session:
            await session.execute(delete(Worker).where(Worker.id == self.id))
            await session.commit()

    async def heartbeat(self, stop: asyncio.Event, *, in_flight: Callable[[], int]) -> None:
        """Every `crawl_heartbeat_seconds` until cancelled; sets `stop` when the key is refused."""
        while True:
            await asyncio.sleep(self.context.settings.crawl_heartbeat_seconds)
            if self.key is not None:
                try:
                    await authenticate_worker(self.context.db, self.key)
                except DomainError as exc:
                    log.warning("crawl_worker_key_refused", worker=self.name, error=exc.detail)
                    stop.set()
                    return
            try:
                async with self.context.db.session() as session:
                    await session.execute(
                        update(Worker)
                        .where(Worker.id == self.id)
                        .values(last_seen_at=utcnow(), in_flight=in_flight())
                    )
                    await session.commit()
            except Exception:
                log.exception("crawl_heartbeat_failed", worker=self.name)
