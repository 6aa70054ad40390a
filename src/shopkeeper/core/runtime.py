"""The long-lived objects of one process, built once at start-up and shared by requests, the
outbox relay and job consumers alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from shopkeeper.core.db import Database
from shopkeeper.core.ratelimit import RateLimiter
from shopkeeper.core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    db: Database
    ratelimiter: RateLimiter
    services: dict[str, Any] = field(default_factory=dict)
    readiness_checks: dict[str, Callable[[], Awaitable[None]]] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        return cls(settings=settings, db=Database(settings), ratelimiter=RateLimiter(settings))

    async def close(self) -> None:
        await self.db.dispose()


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def client_address(request: Request) -> str:
    """The caller's address; behind nginx uvicorn's proxy-headers support has already put the
    forwarded address here."""
    return request.client.host if request.client else "unknown"


AppRuntime = Annotated[Runtime, Depends(get_runtime)]
ClientAddress = Annotated[str, Depends(client_address)]
