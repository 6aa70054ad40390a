"""A ClickHouse server (or cluster) through clickhouse-connect: the same statements as chDB.

clickhouse-connect's client is synchronous here (its chDB backend, which the tests use to run
this adapter in CI, has no async client), so statements run on a small thread pool. A batch
travels as the body of its INSERT and is read by `input()`; on clickhouse-connect's chDB
backend, which has no `input()`, it is bound as a parameter and read by `format()`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from shopkeeper.logs.store.base import (
    RECORD_STRUCTURE,
    Batch,
    LogStore,
    StoreUnavailable,
    batch_parameters,
    insert_sql,
)
from shopkeeper.logs.store.syslog_transform import SYSLOG_STRUCTURE

_CLIENT_SETTINGS = {
    "output_format_json_quote_64bit_integers": 0,
    "output_format_json_quote_decimals": 0,
}
_STRUCTURES = {
    "json_lines": ("line String", "LineAsString"),
    "records": (RECORD_STRUCTURE, "JSONEachRow"),
    "syslog": (SYSLOG_STRUCTURE, "TabSeparated"),
}


class ServerStore(LogStore):
    def __init__(self, url: str, *, database: str, retention_days: int) -> None:
        super().__init__(database=database, retention_days=retention_days)
        self.url = url
        self._client: Any = None
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="clickhouse")

    @property
    def _embedded(self) -> bool:
        return self.url.startswith("chdb:")

    async def _connect(self) -> None:
        import clickhouse_connect
        from clickhouse_connect import common

        # Bind dicts as ClickHouse map literals (the default is JSON text), so that a
        # `{name:Map(String, String)}` parameter means the same here as on chDB.
        common.set_setting("dict_parameter_format", "map")

        def connect() -> Any:
            if self._embedded:
                return clickhouse_connect.get_client(dsn=self.url, settings=_CLIENT_SETTINGS)
            # The database may not exist yet: statements name ours explicitly.
            return clickhouse_connect.get_client(
                dsn=self.url,
                database="default",
                settings=_CLIENT_SETTINGS,
                autogenerate_session_id=False,
                send_receive_timeout=300,
            )

        try:
            self._client = await self._run(connect)
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach ClickHouse: {exc}") from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._run(client.close)
        self._executor.shutdown(wait=True)

    @property
    def concurrent_inserts(self) -> int:
        # A server takes concurrent INSERTs; clickhouse-connect's chDB backend is one session.
        return 1 if self._embedded else 2

    async def insert(self, batch: Batch) -> None:
        structure, fmt = _STRUCTURES[batch.format]
        parameters = batch_parameters(batch)
        settings = self.insert_settings(batch.batch_id)
        if self._embedded:
            relation = f"format({fmt}, '{structure}', {{payload:String}})"
            parameters["payload"] = batch.payload.decode("utf-8", errors="replace")
            sql, data = insert_sql(self.table, batch.format, relation), None
        else:
            relation = f"input('{structure}')"
            sql = f"{insert_sql(self.table, batch.format, relation)}\nFORMAT {fmt}"
            data = batch.payload
        try:
            await self._run(
                lambda: self._client.command(
                    sql, parameters=parameters, data=data, settings=settings
                )
            )
        except Exception as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def query_bytes(
        self, sql: str, parameters: Mapping[str, Any] | None = None, fmt: str = "JSONEachRow"
    ) -> bytes:
        params = dict(parameters) if parameters else None
        data: bytes = await self._run(
            lambda: self._client.raw_query(sql, parameters=params, fmt=fmt)
        )
        return data

    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        params = dict(parameters) if parameters else None
        await self._run(lambda: self._client.command(sql, parameters=params))

    async def _run(self, function: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function)
