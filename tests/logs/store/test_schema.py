"""The table DDL: what chDB creates, and the cluster DDL pinned by a golden file."""

from __future__ import annotations

import os
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
    assert len(statements) == len(schema.storage_migration_sql("db.logs"))
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
    assert "TTL toDateTime(timestamp) + toIntervalDay(14)" in create
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
