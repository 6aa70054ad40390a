"""The storage interface: one ClickHouse SQL, two ways to reach it (chDB in-process, a server
over HTTP). Writes arrive as `Batch`es, the unit that is stored, deduplicated and (in
production) carried by the ingest buffer."""

from __future__ import annotations

import abc
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import orjson
import structlog

from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import schema
from shopkeeper.logs.store.metrics import INSERT_SECONDS, LINES_STORED
from shopkeeper.logs.store.syslog_transform import syslog_select
from shopkeeper.logs.store.transform import json_lines_select

log = structlog.get_logger(__name__)

BatchFormat = Literal["json_lines", "records", "syslog"]

RECORD_STRUCTURE = (
    "ts Int64, service String, host String, level String, message String, "
    "trace_id String, span_id String, attributes Map(String, String), label_keys Array(String)"
)


@dataclass(frozen=True, slots=True)
class Batch:
    """Lines of one tenant and source, stored all or nothing.

    `payload` is raw JSON lines (`json_lines`: NDJSON as a client sent it, parsed by
    ClickHouse), syslog frames (`syslog`: rows of `SYSLOG_STRUCTURE`, parsed by ClickHouse) or
    `encode_records` output (`records`: already normalised by a protocol decoder).
    `batch_id` is the deduplication token: a batch stored again under the same id (a retried
    or redelivered batch) is not stored twice."""

    tenant: str
    source: str
    format: BatchFormat
    payload: bytes
    lines: int
    extra_attributes: Mapping[str, str] = field(default_factory=dict)
    batch_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def group(self) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
        """Batches of one group can be written by one INSERT."""
        return (self.tenant, self.source, self.format, tuple(sorted(self.extra_attributes.items())))


def encode_records(records: Iterable[LogRecord]) -> bytes:
    """Normalised records as JSONEachRow rows in `RECORD_STRUCTURE`."""
    return b"".join(
        orjson.dumps(
            {
                "ts": record.timestamp_ns,
                "service": record.service,
                "host": record.host,
                "level": record.level,
                "message": record.message,
                "trace_id": record.trace_id,
                "span_id": record.span_id,
                "attributes": record.attributes,
                "label_keys": record.label_keys,
            },
            option=orjson.OPT_APPEND_NEWLINE,
        )
        for record in records
    )


def records_batch(
    records: Sequence[LogRecord], *, tenant: str, source: str, batch_id: str | None = None
) -> Batch:
    return Batch(
        tenant=tenant,
        source=source,
        format="records",
        payload=encode_records(records),
        lines=len(records),
        batch_id=batch_id or uuid.uuid4().hex,
    )


def records_select(relation: str) -> str:
    """`SELECT <all columns>` over normalised records; a zero timestamp means "now"."""
    # The relation is ours; every value arrives as a bound parameter.
    return (
        "SELECT {tenant:String} AS tenant, service, host, level, {source:String} AS source, "  # noqa: S608
        "if(ts = 0, now64(9, 'UTC'), fromUnixTimestamp64Nano(ts, 'UTC')) AS timestamp, "
        "now64(9, 'UTC') AS observed_at, message, trace_id, span_id, "
        "mapUpdate(attributes, CAST(JSONExtract({extra:String}, 'Map(String, String)'), "
        "'Map(String, String)')) AS attributes, label_keys "
        f"FROM {relation}"
    )


INSERT_SETTINGS: Mapping[str, int] = {
    # The transforms are chains of subqueries (see `json_lines_select`). Merging their
    # expression steps into one cost more than it saved, at every size: on chDB 26.9 a 1-line
    # NDJSON INSERT took ~7 ms less without it (~45 -> ~38 ms: plan optimisation 6.7 -> 1.5 ms,
    # pipeline threads 39 -> 21 ms), and 43,000-line INSERTs back to back ran ~6% faster.
    "query_plan_merge_expressions": 0,
}
"""Settings of every INSERT, in the statement itself: the same SQL in chDB, on a server, and in
bench.logs_ingest's engine reference."""


def insert_sql(
    table: str, batch_format: BatchFormat, relation: str, settings: Mapping[str, str] | None = None
) -> str:
    """The INSERT of a batch read from `relation`, with `INSERT_SETTINGS` and `settings`
    (string values, quoted here) in its SETTINGS clause."""
    if batch_format == "json_lines":
        select = json_lines_select(relation)
    elif batch_format == "syslog":
        select = syslog_select(relation)
    else:
        select = records_select(relation)
    clause = [f"{name} = {value}" for name, value in INSERT_SETTINGS.items()]
    clause += [f"{name} = {_quote(value)}" for name, value in (settings or {}).items()]
    sql = f"INSERT INTO {table} ({', '.join(schema.COLUMN_NAMES)})\n{select}"
    return f"{sql}\nSETTINGS {', '.join(clause)}" if clause else sql


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def batch_parameters(batch: Batch) -> dict[str, Any]:
    # The extra attributes travel as JSON text: every client binds a String the same way,
    # while Map parameters are formatted differently by chDB and clickhouse-connect.
    extra = orjson.dumps(dict(batch.extra_attributes)).decode()
    return {"tenant": batch.tenant, "source": batch.source, "extra": extra}


class StoreUnavailable(Exception):
    """The storage did not take a batch (down, or refused it); nothing of it is acknowledged."""


class LogStore(abc.ABC):
    """ClickHouse, reached in-process (chDB) or over HTTP (a server); same SQL either way."""

    def __init__(self, *, database: str, retention_days: int) -> None:
        self.database = schema.identifier(database)
        self.retention_days = retention_days
        self.table = f"{self.database}.{schema.TABLE}"
        self.cluster = ""
        """On a cluster, the cluster of the Distributed `logs` table (found when the store
        opens); retention's statements then go to every node's `local_table`."""
        self.local_table = self.table
        """The table holding the parts: `logs` itself, or on a cluster its nodes' table."""

    async def open(self) -> None:
        """Connect and create (or migrate the retention, settings and codecs of) the table.

        A `logs` table that is not a MergeTree (on a cluster, the Distributed table over every
        node's `logs_local`) is left alone: TTL, settings, codecs and indexes belong to the
        local tables, which `shopkeeper logs ddl --cluster NAME --migrate` brings up to date
        `ON CLUSTER`; an ALTER of them through the Distributed table would be refused, and the
        store would not open."""
        await self._connect()
        engine, engine_full = await self._engine_of_table()
        if engine and not engine.endswith("MergeTree"):
            target = schema.distributed_target(engine_full)
            if target is not None:
                self.cluster, self.local_table = target
            log.info("logs_store_table_managed_elsewhere", table=self.table, engine=engine)
            return
        for statement in schema.create_table_sql(self.database, self.retention_days):
            await self.command(statement)
        await self.command(schema.modify_ttl_sql(self.database, self.retention_days))
        tables = await self.query(
            "SELECT engine_full FROM system.tables "
            "WHERE database = {database:String} AND name = {table:String}",
            {"database": self.database, "table": schema.TABLE},
        )
        if tables and schema.merge_settings_missing(str(tables[0]["engine_full"])):
            await self.command(schema.modify_merge_setting_sql(self.database))
        indexes = await self.query(
            "SELECT name FROM system.data_skipping_indices "
            "WHERE database = {database:String} AND table = {table:String}",
            {"database": self.database, "table": schema.TABLE},
        )
        columns = await self.query(
            "SELECT name, compression_codec FROM system.columns "
            "WHERE database = {database:String} AND table = {table:String}",
            {"database": self.database, "table": schema.TABLE},
        )
        codecs = {str(row["name"]): str(row["compression_codec"]) for row in columns}
        if schema.needs_storage_migration({str(row["name"]) for row in indexes}):
            migration = schema.storage_migration_sql(self.table)
        elif schema.needs_codec_migration(codecs):
            migration = schema.codec_migration_sql(self.table)
        else:
            migration = []
        for statement in migration:
            await self.command(statement)

    async def _engine_of_table(self) -> tuple[str, str]:
        """The engine of the existing `logs` table and its `engine_full` (with its arguments),
        both empty when there is no such table yet."""
        rows = await self.query(
            "SELECT engine, engine_full FROM system.tables "
            "WHERE database = {database:String} AND name = {table:String}",
            {"database": self.database, "table": schema.TABLE},
        )
        if not rows:
            return "", ""
        return str(rows[0]["engine"]), str(rows[0]["engine_full"])

    @abc.abstractmethod
    async def _connect(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None: ...

    @property
    def concurrent_inserts(self) -> int:
        """INSERTs worth running at once (the group-commit writer runs as many rounds)."""
        return 1

    def insert_settings(self, batch_id: str) -> dict[str, str]:
        """Settings of the INSERT storing a batch: its id as the deduplication token and, on a
        cluster, a synchronous insert into the shards. ClickHouse's default would answer once
        the node receiving it had queued the rows for the shards, not once they were stored."""
        settings = {"insert_deduplication_token": batch_id}
        if self.cluster:
            settings["distributed_foreground_insert"] = "1"
        return settings

    @abc.abstractmethod
    async def insert(self, batch: Batch) -> None:
        """Store one batch durably (returns after ClickHouse has written it), deduplicated by
        `batch.batch_id`. Raises `StoreUnavailable` when nothing was stored."""

    async def insert_many(self, batches: Sequence[Batch]) -> None:
        """Store batches, coalescing those of one group into one INSERT (fewer, larger parts).
        The combined INSERT's deduplication token is derived from the batch ids in order."""
        groups: dict[tuple[Any, ...], list[Batch]] = {}
        for batch in batches:
            groups.setdefault(batch.group, []).append(batch)
        for members in groups.values():
            started = time.perf_counter()
            await self._insert_group(members)
            INSERT_SECONDS.observe(time.perf_counter() - started)
            LINES_STORED.inc(sum(batch.lines for batch in members))

    async def _insert_group(self, batches: Sequence[Batch]) -> None:
        """One INSERT of batches of one group, deduplicated by `combined_batch_id`."""
        await self.insert(combine_batches(batches) if len(batches) > 1 else batches[0])

    def stage(self, batches: Sequence[Batch]) -> None:
        """Told of batches queued for an `insert_many` soon (by the group-commit writer): a
        store may start preparing them meanwhile. Returns at once; by default does nothing."""
        return None

    @abc.abstractmethod
    async def query_bytes(
        self, sql: str, parameters: Mapping[str, Any] | None = None, fmt: str = "JSONEachRow"
    ) -> bytes:
        """The raw output of a query in a ClickHouse output format."""

    async def query(
        self, sql: str, parameters: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Rows as dicts (JSONEachRow; 64-bit integers as numbers)."""
        raw = await self.query_bytes(sql, parameters, "JSONEachRow")
        return [orjson.loads(line) for line in raw.splitlines() if line]

    @abc.abstractmethod
    async def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> None:
        """A statement without a result (DDL, ALTER, OPTIMIZE)."""

    # Retention (`logs.retention`) works on the daily partitions of the table holding the
    # parts: `logs` on one node, every node's `local_table` on a cluster.

    async def partitions(self) -> list[Partition]:
        """The table's daily partitions, oldest first, with their size on disk (on a cluster,
        the most any one node holds of each day) and their lines."""
        database, table = self.local_table.split(".")
        rows = await self.query(
            schema.partitions_sql(self.cluster), {"database": database, "table": table}
        )
        return [
            Partition(id=str(row["partition_id"]), bytes=int(row["bytes"]), rows=int(row["rows"]))
            for row in rows
        ]

    async def drop_partition(self, partition_id: str) -> None:
        await self.command(schema.drop_partition_sql(self.local_table, partition_id, self.cluster))

    async def delete_lines(self, condition: str, parameters: Mapping[str, Any]) -> None:
        """Deletes the lines matching `condition` (our own SQL; values bound as `parameters`)."""
        await self.command(schema.delete_sql(self.local_table, condition, self.cluster), parameters)


@dataclass(frozen=True, slots=True)
class Partition:
    id: str
    """`YYYYMMDD`: the day (UTC) of the lines it holds (`PARTITION BY toDate(timestamp)`)."""
    bytes: int
    rows: int

    @property
    def day(self) -> date:
        return date(int(self.id[:4]), int(self.id[4:6]), int(self.id[6:]))


def combine_batches(batches: Sequence[Batch]) -> Batch:
    first = batches[0]
    payload = b"".join(
        batch.payload if batch.payload.endswith(b"\n") else batch.payload + b"\n"
        for batch in batches
    )
    return Batch(
        tenant=first.tenant,
        source=first.source,
        format=first.format,
        payload=payload,
        lines=sum(batch.lines for batch in batches),
        extra_attributes=first.extra_attributes,
        batch_id=combined_batch_id(batches),
    )


def combined_batch_id(batches: Sequence[Batch]) -> str:
    """The deduplication token of batches stored by one INSERT: derived from their ids in
    order, so the same batches retried together are not stored twice."""
    if len(batches) == 1:
        return batches[0].batch_id
    return uuid.uuid5(uuid.NAMESPACE_OID, ",".join(b.batch_id for b in batches)).hex
