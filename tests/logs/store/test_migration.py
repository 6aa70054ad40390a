"""A store created with the earlier DDL (before issue 12's storage work) is migrated when it
opens: new codecs, the text index rebuilt without long numbers, their bloom filter added; and
every search answers the same before the indexes are rebuilt as after."""

from __future__ import annotations

import asyncio
import secrets
import time

from shopkeeper.core.settings import Settings
from shopkeeper.logs.query import ast
from shopkeeper.logs.query.compiler import Params, compile_log_query, log_rows_sql
from shopkeeper.logs.query.parser import parse
from shopkeeper.logs.store import LogStore, schema
from shopkeeper.logs.store.embedded import EmbeddedStore

# The table as `schema.create_table_sql` made it before (tests/logs/store/golden at 45f56e6).
EARLIER_TABLE = """CREATE TABLE {database}.logs
(
    tenant LowCardinality(String),
    service LowCardinality(String),
    host LowCardinality(String),
    level LowCardinality(String),
    source LowCardinality(String),
    timestamp DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    observed_at DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1)),
    message String CODEC(ZSTD(1)),
    trace_id String CODEC(ZSTD(1)),
    span_id String CODEC(ZSTD(1)),
    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    label_keys Array(LowCardinality(String)) CODEC(ZSTD(1)),
    INDEX message_text message TYPE text(tokenizer = splitByNonAlpha),
    INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX attribute_keys_bloom mapKeys(attributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX attribute_values_bloom mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 1
)
ENGINE = MergeTree
PARTITION BY toDate(timestamp)
ORDER BY (tenant, service, timestamp)
TTL toDateTime(timestamp) + toIntervalDay(14)
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 10000"""

SEARCHES = ('|= "104321"', '|= "payment"', '|= "/orders/104321 user"', '|= "4321"', '!= "100007"')


async def search(store: LogStore, table: str, logql: str, now: int) -> list[str]:
    expr = parse('{service="shop"} ' + logql)
    assert isinstance(expr, ast.LogQuery)
    params = Params()
    sql = log_rows_sql(table, compile_log_query(expr, params), backward=True)
    values = {"tenant": "t", "start": now - 3600 * 10**9, "end": now, "limit": 5, "offset": 0}
    rows = await store.query(sql, {**params.values, **values})
    return [str(row["message"]) for row in rows]


async def test_a_table_of_the_earlier_ddl_is_migrated_when_the_store_opens(
    log_store: LogStore, logs_settings: Settings
) -> None:
    database = f"migrate_{secrets.token_hex(4)}"
    now = time.time_ns()
    await log_store.command(f"CREATE DATABASE {database}")
    try:
        await log_store.command(EARLIER_TABLE.format(database=database))
        await log_store.command(
            f"INSERT INTO {database}.logs (tenant, service, host, level, source, timestamp, "
            "observed_at, message, trace_id, span_id, attributes, label_keys) "
            "SELECT 't', 'shop', 'h1', 'info', 'ndjson', "
            "fromUnixTimestamp64Nano(toInt64({now:Int64} - (number + 1) * 10000000), 'UTC'), "
            "now64(9), concat('payment for /orders/', toString(100000 + number), ' user ', "
            "toString(number % 9973)), '', '', map(), [] FROM numbers(50000)",
            {"now": now},
        )
        table = f"{database}.logs"
        store = EmbeddedStore(logs_settings.logs_path, database=database, retention_days=14)

        async def answers() -> dict[str, list[str]]:
            return {logql: await search(log_store, table, logql, now) for logql in SEARCHES}

        before = await answers()
        assert before['|= "104321"'] == ["payment for /orders/104321 user 4321"]
        await store.open()
        try:
            # Every search answers the same while the indexes are rebuilt and after.
            assert await answers() == before
            indexes = {
                str(row["name"]): str(row["type_full"])
                for row in await store.query(
                    "SELECT name, type_full FROM system.data_skipping_indices "
                    "WHERE database = {db:String} AND table = 'logs'",
                    {"db": database},
                )
            }
            assert "preprocessor" in indexes["message_text"]
            assert indexes["message_numbers"].startswith("bloom_filter")
            codecs = {
                str(row["name"]): str(row["compression_codec"])
                for row in await store.query(
                    "SELECT name, compression_codec FROM system.columns "
                    "WHERE database = {db:String} AND table = 'logs'",
                    {"db": database},
                )
            }
            assert codecs["message"] == "CODEC(Default)"
            engine = await store.query(
                "SELECT engine_full FROM system.tables WHERE database = {db:String} "
                "AND name = 'logs'",
                {"db": database},
            )
            assert not schema.merge_settings_missing(str(engine[0]["engine_full"]))
            assert codecs["host"] == "CODEC(ZSTD(1))"
            for _ in range(300):
                pending = await store.query(
                    "SELECT count() AS n FROM system.mutations "
                    "WHERE database = {db:String} AND table = 'logs' AND NOT is_done",
                    {"db": database},
                )
                if pending[0]["n"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert await answers() == before
            # Opening again finds nothing left to migrate.
            assert not schema.needs_storage_migration(set(indexes))
            assert not schema.needs_codec_migration(codecs)
            await store.open()
        finally:
            await store.close()
    finally:
        await log_store.command(f"DROP DATABASE IF EXISTS {database}")


async def test_a_table_without_recompression_gets_it_when_the_store_opens(
    log_store: LogStore, logs_settings: Settings
) -> None:
    # The DDL before days at rest were recompressed: an explicit ZSTD(3) on the message and
    # the attributes, no default codec, a TTL of retention only.
    database = f"recompress_{secrets.token_hex(4)}"
    create = schema.create_table_sql(database, 14)[1]
    earlier = (
        create.replace("CODEC(Default)", "CODEC(ZSTD(3))")
        .replace(f", {schema.recompress_ttl()}", "")
        .replace(", default_compression_codec = 'ZSTD(3)'", "")
    )
    assert earlier.count("CODEC(ZSTD(3))") == 3 and "RECOMPRESS" not in earlier
    await log_store.command(f"CREATE DATABASE {database}")
    try:
        await log_store.command(earlier)
        await log_store.command(
            f"INSERT INTO {database}.logs (tenant, service, host, level, source, timestamp, "
            "observed_at, message, trace_id, span_id, attributes, label_keys) "
            "SELECT 't', 'shop', 'h1', 'info', 'ndjson', fromUnixTimestamp64Nano(toInt64("
            "{now:Int64} - 3 * 86400000000000 - (number + 1) * 1000000), 'UTC'), now64(9), "
            "concat('payment for /orders/', toString(100000 + number)), '', '', map(), [] "
            "FROM numbers(20000)",
            {"now": time.time_ns()},
        )
        store = EmbeddedStore(logs_settings.logs_path, database=database, retention_days=14)
        await store.open()
        try:
            codecs = {
                str(row["name"]): str(row["compression_codec"])
                for row in await store.query(
                    "SELECT name, compression_codec FROM system.columns "
                    "WHERE database = {db:String} AND table = 'logs'",
                    {"db": database},
                )
            }
            assert codecs["message"] == codecs["attributes"] == "CODEC(Default)"
            assert codecs["label_keys"] == "CODEC(ZSTD(3))"
            assert not schema.needs_codec_migration(codecs)
            # The day written before is recompressed once its TTL is materialized (a mutation).
            for _ in range(300):
                pending = await store.query(
                    "SELECT count() AS n FROM system.mutations "
                    "WHERE database = {db:String} AND table = 'logs' AND NOT is_done",
                    {"db": database},
                )
                if pending[0]["n"] == 0:
                    break
                await asyncio.sleep(0.1)
            await store.command(f"OPTIMIZE TABLE {database}.logs FINAL")
            parts = await store.query(
                "SELECT default_compression_codec AS codec, rows FROM system.parts "
                "WHERE database = {db:String} AND table = 'logs' AND active",
                {"db": database},
            )
            assert [(row["codec"], int(row["rows"])) for row in parts] == [("ZSTD(12)", 20000)]
            rows = await store.query(
                f"SELECT count() AS n FROM {database}.logs WHERE message LIKE '%/orders/104321'"
            )
            assert int(rows[0]["n"]) == 1
            await store.open()  # nothing left to migrate: opening again is harmless
        finally:
            await store.close()
    finally:
        await log_store.command(f"DROP DATABASE IF EXISTS {database}")


async def test_a_cluster_s_distributed_table_is_opened_without_ddl_or_migration(
    log_store: LogStore, logs_settings: Settings
) -> None:
    """On a cluster `logs` is a Distributed table over every node's `logs_local`: TTL,
    settings, codecs and indexes belong to the local tables (`logs ddl --cluster --migrate`),
    and an ALTER of them through `logs` would be refused, so the store must open without one.
    chDB has no cluster, so a Merge table over `logs_local` stands in for the Distributed one
    (another engine that reads other tables and refuses `MODIFY TTL`)."""
    database = f"cluster_{secrets.token_hex(4)}"
    now = time.time_ns()
    await log_store.command(f"CREATE DATABASE {database}")
    try:
        for statement in schema.create_table_sql(database, 14, "logs_local")[1:]:
            await log_store.command(statement)
        await log_store.command(
            f"CREATE TABLE {database}.logs AS {database}.logs_local "
            f"ENGINE = Merge({database}, '^logs_local$')"
        )
        await log_store.command(
            f"INSERT INTO {database}.logs_local (tenant, service, host, level, source, "
            "timestamp, observed_at, message, trace_id, span_id, attributes, label_keys) "
            "SELECT 't', 'shop', 'h1', 'info', 'ndjson', "
            "fromUnixTimestamp64Nano(toInt64({now:Int64} - (number + 1) * 10000000), 'UTC'), "
            "now64(9), concat('payment for /orders/', toString(100000 + number)), '', '', "
            "map(), [] FROM numbers(100)",
            {"now": now},
        )
        store = EmbeddedStore(logs_settings.logs_path, database=database, retention_days=7)
        await store.open()
        try:
            engine = await store.query(
                "SELECT engine FROM system.tables WHERE database = {db:String} AND name = 'logs'",
                {"db": database},
            )
            assert engine == [{"engine": "Merge"}]
            assert await search(store, f"{database}.logs", '|= "100042"', now) == [
                "payment for /orders/100042"
            ]
        finally:
            await store.close()
    finally:
        await log_store.command(f"DROP DATABASE IF EXISTS {database}")
