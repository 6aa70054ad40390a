"""Who may write and read logs, and as which tenant. Every logs endpoint takes its tenant from
here and nowhere else, so the rules live in one place."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

DEFAULT_TENANT = "default"


async def write_tenant(request: Request) -> str:
    """The tenant an ingest request writes as."""
    return DEFAULT_TENANT


async def read_tenant(request: Request) -> str:
    """The only tenant a query may read."""
    return DEFAULT_TENANT


WriteTenant = Annotated[str, Depends(write_tenant)]
ReadTenant = Annotated[str, Depends(read_tenant)]
