"""Who may write and read logs, and as which tenant. Every logs endpoint takes its tenant from
here and nowhere else: a key's tenant is the tenant of what it writes and the only one it
reads; signed-in users (staff with `log_reader`) work in `default`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from shopkeeper.accounts.permissions import permission
from shopkeeper.core.security import Actor

DEFAULT_TENANT = "default"

# `permission` also names the scope in the OpenAPI document.
LogWriter = Annotated[Actor, permission("logs:write")]
LogReader = Annotated[Actor, permission("logs:read")]


async def write_tenant(actor: LogWriter) -> str:
    """The tenant an ingest request writes as (401 without credentials, 403 without
    `logs:write`; each protocol renders those in its own error format)."""
    return actor.tenant


async def read_tenant(actor: LogReader) -> str:
    """The only tenant a query may read."""
    return actor.tenant


WriteTenant = Annotated[str, Depends(write_tenant)]
ReadTenant = Annotated[str, Depends(read_tenant)]
