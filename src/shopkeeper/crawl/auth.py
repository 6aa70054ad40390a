"""Who may read and change crawls (API.md: reads need `crawl:read`, changes `crawl:write`), from
a user's roles or an API key's scopes: the one place the crawl API asks.

Crawls are not per tenant: a key's tenant does not narrow what it sees here.
"""

from __future__ import annotations

from typing import Annotated

from shopkeeper.accounts.permissions import permission
from shopkeeper.core.security import Actor

READ = "crawl:read"
WRITE = "crawl:write"

CanRead = Annotated[Actor, permission(READ)]
CanWrite = Annotated[Actor, permission(WRITE)]
