"""The log store of a process's background work (alert evaluation, retention), opened on first
use and kept. Embedded, chDB shares one engine per process, so `serve` works on the directory it
owns; a separate `shopkeeper scheduler` needs a ClickHouse server
(`SHOPKEEPER_LOGS_CLICKHOUSE_URL`), and skips this work with a warning otherwise."""

from __future__ import annotations

import asyncio

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore, open_store

_store: LogStore | None = None
_lock = asyncio.Lock()


async def process_store(settings: Settings) -> LogStore:
    global _store
    async with _lock:
        if _store is None:
            _store = await open_store(settings)
        return _store
