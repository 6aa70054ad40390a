"""A ClickHouse server (or cluster) over HTTP through clickhouse-connect: the same statements
as chDB, the batch travelling as the INSERT's body and read by `input()`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from shopkeeper.logs.store.base import (
    RECORD_STRUCTURE,
    Batch,
    LogStore,
    StoreUnavailable,
    batch_parameters,
    insert_sql,
)

_CLIENT_SETTINGS = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
}


class ServerStore(LogStore):
    def __init__(self, url: str, *, database: str, retention_days: int) -> None:
        super().__init__(database=database, retention_days=retention_days)
        self.url = url
        self._client: Any = None

    async def _connect(self) -> None:
        import clickhouse_connect

        parts = urlsplit(self.url)
        # The database may not exist yet: connect to `default`, name ours in every statement.
        self._client = await clickhouse_connect.get_async_client(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (8443 if parts.scheme == "https" else 8123),
            username=parts.username or "default",
            password=parts.password or "",
            secure=parts.scheme == "https",
            database="default",
            settings=_CLIENT_SETTINGS,
            autogenerate_session_id=False,
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def insert(self, batch: Batch) -> None:
        if batch.format == "json_lines":
            relation, fmt = "input('line String')", "LineAsString"
        else:
            relation, fmt = f"input('{RECORD_STRUCTURE}')", "JSONEachRow"
        sql = f"{insert_sql(self.table, batch.format, relation)}\nFORMAT {fmt}"
        try:
            await self._client.command(
                sql,
                parameters=batch_parameters(batch),
                data=batch.payload,
                settings={"insert_deduplication_token": batch.batch_id},
            )
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def query_bytes(
        self, sql: str, parameters: Mapping[str, Any] | None = None, fmt: str = "JSONEachRow"
    ) -> bytes:
        data: bytes = await self._client.raw_query(
            sql, parameters=dict(parameters) if parameters else None, fmt=fmt
        )
        return data

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        await self._client.command(sql, parameters=dict(parameters) if parameters else None)
