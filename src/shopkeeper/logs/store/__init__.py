"""Log storage: one ClickHouse table, reached through chDB (embedded) or a server."""

from __future__ import annotations

from shopkeeper.core.settings import Settings
from shopkeeper.logs.store.base import Batch, LogStore, StoreUnavailable, records_batch

__all__ = ["Batch", "LogStore", "StoreUnavailable", "open_store", "records_batch"]


def build_store(settings: Settings) -> LogStore:
    """The server store when `SHOPKEEPER_LOGS_CLICKHOUSE_URL` is set, else chDB under
    `SHOPKEEPER_LOGS_DIR`; not yet connected."""
    if settings.logs_clickhouse_url:
        from shopkeeper.logs.store.server import ServerStore

        return ServerStore(
            settings.logs_clickhouse_url,
            database=settings.logs_database,
            retention_days=settings.logs_longest_retention_days,
        )
    from shopkeeper.logs.store.embedded import EmbeddedStore

    return EmbeddedStore(
        settings.logs_path,
        database=settings.logs_database,
        retention_days=settings.logs_longest_retention_days,
        config_file=settings.logs_chdb_config,
    )


async def open_store(settings: Settings) -> LogStore:
    store = build_store(settings)
    await store.open()
    return store
