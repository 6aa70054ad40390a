"""Who may read and change crawls: the one place the crawl API asks (API.md: reads need
`crawl:read`, changes `crawl:write`).

Until `shopkeeper.accounts.permissions` reaches this branch the checks admit every caller;
wiring them is replacing the two dependencies below with `require("crawl:read")` and
`require("crawl:write")`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends


async def _anyone() -> None:
    return None


CanRead = Annotated[None, Depends(_anyone)]
CanWrite = Annotated[None, Depends(_anyone)]
