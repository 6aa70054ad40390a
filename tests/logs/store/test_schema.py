"""The table DDL: what chDB creates, and the cluster DDL pinned by a golden file."""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from shopkeeper.logs.store import LogStore, schema

GOLDEN = Path(__file__).parent / "golden" / "cluster_ddl.sql"


def test_cluster_ddl_matches_the_golden_file() -> None:
    ddl = schema.cluster_ddl("logs_cluster", "shopkeeper_logs", 14)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(ddl)
    assert ddl == GOLDEN.read_text()


async def test_cluster_ddl_is_valid_clickhouse_sql(log_store: LogStore) -> None:
    # formatQuery parses without executing: chDB has no cluster or Keeper to run it on.
    for statement in schema.cluster_ddl("logs_cluster").split(";\n"):
        if statement.strip():
            rows = await log_store.query(
                "SELECT formatQuery({sql:String}) AS q", {"sql": statement}
            )
            assert "ON CLUSTER logs_cluster" in rows[0]["q"]


async def test_the_cluster_migration_is_valid_clickhouse_sql(log_store: LogStore) -> None:
    statements = [s for s in schema.cluster_migration_ddl("logs_cluster").split(";\n") if s.strip()]
    # The TTL (retention and recompression), then the storage migration.
    assert len(statements) == 1 + len(schema.storage_migration_sql("db.logs"))
    assert "RECOMPRESS CODEC(ZSTD(12))" in statements[0]
    for statement in statements:
        rows = await log_store.query("SELECT formatQuery({sql:String}) AS q", {"sql": statement})
        assert "shopkeeper_logs.logs_local ON CLUSTER logs_cluster" in rows[0]["q"]


async def test_the_table_has_the_promised_layout(log_store: LogStore) -> None:
    (table,) = await log_store.query(
        "SELECT engine, partition_key, sorting_key, create_table_query FROM system.tables "
        "WHERE database = {db:String} AND name = 'logs'",
        {"db": log_store.database},
    )
    assert table["engine"] == "MergeTree"
    assert table["partition_key"] == "toDate(timestamp)"
    assert table["sorting_key"] == "tenant, service, timestamp"
    create = table["create_table_query"]
    assert "INDEX message_text message TYPE text(tokenizer = splitByNonAlpha" in create
    assert "INDEX message_numbers arrayFilter(" in create
    assert "ttl_only_drop_parts = 1" in create
    assert "TTL toDateTime(timestamp) + toIntervalDay(14), " in create
    assert "RECOMPRESS CODEC(ZSTD(12))" in create
    assert "default_compression_codec = 'ZSTD(3)'" in create
    columns = {
        row["name"]: row["type"]
        for row in await log_store.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = 'logs'",
            {"db": log_store.database},
        )
    }
    assert columns["service"] == "LowCardinality(String)"
    assert columns["timestamp"] == "DateTime64(9, 'UTC')"
    assert columns["attributes"] == "Map(LowCardinality(String), String)"


async def test_a_day_at_rest_is_recompressed_and_reads_the_same(log_store: LogStore) -> None:
    # The same 60,000 lines stored twice: three days ago (at rest: recompressed by the merge)
    # and in the last minutes (today, still being written: the table's default codec).
    database = f"recompress_{secrets.token_hex(4)}"
    for statement in schema.create_table_sql(database, 14):
        await log_store.command(statement)
    try:
        now = time.time_ns()
        for age_ns in (3 * 86_400 * 10**9, 0):
            await log_store.command(
                f"INSERT INTO {database}.logs (tenant, service, host, level, source, timestamp, "
                "observed_at, message, trace_id, span_id, attributes, label_keys) "
                "SELECT 't', 'shop', 'h1', 'info', 'ndjson', fromUnixTimestamp64Nano(toInt64("
                "{now:Int64} - {age:Int64} - (number + 1) * 1000), 'UTC'), now64(9), "
                "concat('payment ', ['declined', 'accepted', 'queued'][1 + number % 3], "
                "' order=', toString(cityHash64(number) % 1000000), ' took ', "
                "toString(number % 997), 'ms'), '', '', map('region', 'eu'), ['region'] "
                "FROM numbers(60000)",
                {"now": now, "age": age_ns},
            )
        await log_store.command(f"OPTIMIZE TABLE {database}.logs FINAL")
        parts = await log_store.query(
            "SELECT min(min_time) < now() - INTERVAL 2 DAY AS at_rest, "
            "any(default_compression_codec) AS codec, sum(rows) AS rows, "
            "sum(bytes_on_disk) AS bytes "
            "FROM system.parts WHERE database = {db:String} AND table = 'logs' AND active "
            "GROUP BY partition",
            {"db": database},
        )
        stored = {bool(row["at_rest"]): (str(row["codec"]), int(row["rows"])) for row in parts}
        assert stored == {True: ("ZSTD(12)", 60000), False: ("ZSTD(3)", 60000)}
        size = {bool(row["at_rest"]): int(row["bytes"]) for row in parts}
        assert size[True] < size[False] * 0.97
        # Both days read back the same lines.
        days = await log_store.query(
            f"SELECT timestamp < now64(9) - INTERVAL 2 DAY AS at_rest, "
            f"groupArray(message) AS lines FROM (SELECT timestamp, message FROM {database}.logs "
            "ORDER BY timestamp) GROUP BY at_rest",
        )
        lines = {bool(row["at_rest"]): row["lines"] for row in days}
        assert len(lines[True]) == 60000
        assert lines[True] == lines[False]
    finally:
        await log_store.command(f"DROP DATABASE IF EXISTS {database}")


def test_the_text_index_leaves_out_exactly_long_numbers_and_long_hex() -> None:
    unindexed = ["12345", "1234567890123", "4bf92f3577b34da6", "4BF92F3577B34DA6A3CE"]
    indexed = ["1234", "timeout", "v1", "1234ms", "deadbeefcafe", "abcdefabcdefabcdefx", "é12345"]
    assert all(schema.is_unindexed_token(token) for token in unindexed)
    assert not any(schema.is_unindexed_token(token) for token in indexed)


async def test_python_and_clickhouse_agree_on_the_unindexed_tokens(log_store: LogStore) -> None:
    line = "a 12345 1234 x4bf92f3577b34da6 4bf92f3577b34da6 é99999 99999é 00000,1234567 "
    line += "ffff0000ffff0000"
    (row,) = await log_store.query(
        f"SELECT {schema.UNINDEXED_TOKENS} AS out, splitByNonAlpha(message) AS tokens "
        "FROM (SELECT {line:String} AS message)",
        {"line": line},
    )
    assert row["out"] == [t for t in row["tokens"] if schema.is_unindexed_token(t)]
    assert row["out"] == ["12345", "4bf92f3577b34da6", "00000", "1234567", "ffff0000ffff0000"]


def test_identifiers_are_checked() -> None:
    import pytest

    with pytest.raises(ValueError):
        schema.cluster_ddl("x; DROP TABLE y")
