"""The log store of a process's background work (alert evaluation, retention), opened on first
use and kept for the life of the process. Embedded, chDB shares one engine per process, so
`serve` works on the directory it owns; a separate `shopkeeper scheduler` needs a ClickHouse
server (`SHOPKEEPER_LOGS_CLICKHOUSE_URL`), and skips this work with a warning otherwise."""

from __future__ import annotations

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore, open_store

_store: LogStore | None = None


async def process_store(settings: Settings) -> LogStore:
    # No lock: two first uses racing both open a handle on the same engine or server, and one
    # of them is kept; the other is merely not closed before the process ends.
    global _store
    if _store is None:
        _store = await open_store(settings)
    return _store
