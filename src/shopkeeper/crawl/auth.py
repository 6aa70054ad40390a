"""Who may read and change crawls (API.md: reads need `crawl:read`, changes `crawl:write`), from
a user's roles or an API key's scopes: the one place the crawl API asks.

Crawls are not per tenant: a key's tenant does not narrow what it sees here.

Workers reach the database (and Redis) themselves, so a worker's key is an identity, not a wall:
a worker started with `SHOPKEEPER_CRAWL_WORKER_KEY` (or `--key`) refuses to start unless the key
is live and holds `crawl:worker`, and stops when the key is revoked.
"""

from __future__ import annotations

from typing import Annotated

from shopkeeper.accounts.permissions import PermissionDenied, permission
from shopkeeper.accounts.service import actor_for_key
from shopkeeper.core.db import Database
from shopkeeper.core.security import Actor

READ = "crawl:read"
WRITE = "crawl:write"
WORKER = "crawl:worker"

CanRead = Annotated[Actor, permission(READ)]
CanWrite = Annotated[Actor, permission(WRITE)]


async def authenticate_worker(db: Database, key: str) -> Actor:
    """The key's actor; `InvalidApiKey` (401) for an unknown or revoked key, `PermissionDenied`
    (403) without the `crawl:worker` scope."""
    async with db.session() as session:
        actor = await actor_for_key(session, presented=key)
    if not actor.can(WORKER):
        raise PermissionDenied(f"A crawl worker's key needs the `{WORKER}` scope")
    return actor
