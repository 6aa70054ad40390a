"""The one log table: its DDL (single node and cluster) and the SQL that turns raw NDJSON lines
into rows, so that ClickHouse, not Python, parses the hot path."""

from __future__ import annotations

import re

TABLE = "logs"
DEFAULT_DATABASE = "shopkeeper_logs"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("tenant", "LowCardinality(String)"),
    ("service", "LowCardinality(String)"),
    ("host", "LowCardinality(String)"),
    ("level", "LowCardinality(String)"),
    ("source", "LowCardinality(String)"),
    ("timestamp", "DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1))"),
    ("observed_at", "DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1))"),
    ("message", "String CODEC(ZSTD(1))"),
    ("trace_id", "String CODEC(ZSTD(1))"),
    ("span_id", "String CODEC(ZSTD(1))"),
    ("attributes", "Map(LowCardinality(String), String) CODEC(ZSTD(1))"),
    # Which keys of `attributes` arrived as stream labels (Loki push labels, OTLP resource
    # attributes); every other attribute is structured metadata. All of them live in one map so
    # that a filter on any attribute is one map lookup.
    ("label_keys", "Array(LowCardinality(String)) CODEC(ZSTD(1))"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

INDEXES: tuple[str, ...] = (
    # A word search (`hasToken`, `|= "word"`) reads only the granules holding the token.
    "INDEX message_text message TYPE text(tokenizer = splitByNonAlpha)",
    "INDEX trace_id_bloom trace_id TYPE bloom_filter(0.001) GRANULARITY 1",
    "INDEX attribute_keys_bloom mapKeys(attributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX attribute_values_bloom mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 1",
)

PARTITION_BY = "toDate(timestamp)"
ORDER_BY = "(tenant, service, timestamp)"
# Hashes of the last N inserted blocks are kept, so a batch re-sent with the same
# `insert_deduplication_token` (the batch id) is not stored twice.
DEDUPLICATION_WINDOW = 10_000
# Background merges took about a third of `serve`'s CPU under steady ingest (parts of 20,000-
# 45,000 lines, each line rewritten ~2-3 times within a minute). A base of 10 (default 5) merges
# about twice as many parts at once, so a line is rewritten less often (merge CPU per ingested
# line -40% in bench.logs_ingest), at the cost of more parts alive between merges (13 instead of
# ~10 after 2 million lines here; queries read a few more parts).
MERGE_SELECTOR_BASE = 10

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def identifier(name: str) -> str:
    """A database, table or cluster name, checked: these are pasted into DDL, not bound."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def ttl_clause(retention_days: int) -> str:
    return f"toDateTime(timestamp) + toIntervalDay({int(retention_days)})"


def _columns_sql() -> str:
    return ",\n".join(f"    {name} {kind}" for name, kind in COLUMNS)


def _table_body(engine: str, retention_days: int) -> str:
    indexes = ",\n".join(f"    {index}" for index in INDEXES)
    return (
        f"(\n{_columns_sql()},\n{indexes}\n)\n"
        f"ENGINE = {engine}\n"
        f"PARTITION BY {PARTITION_BY}\n"
        f"ORDER BY {ORDER_BY}\n"
        f"TTL {ttl_clause(retention_days)}\n"
        "SETTINGS ttl_only_drop_parts = 1, "
        f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}, "
        f"merge_selector_base = {MERGE_SELECTOR_BASE}"
    )


def create_table_sql(database: str, retention_days: int, table: str = TABLE) -> list[str]:
    """Statements creating the database and the table on one node (chDB or one server)."""
    database, table = identifier(database), identifier(table)
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.{table}\n"
        + _table_body("MergeTree", retention_days),
    ]


def modify_ttl_sql(database: str, retention_days: int, table: str = TABLE) -> str:
    """Applies a changed retention to an existing table; parts already written keep their TTL
    until merged, and whole expired parts are dropped (`ttl_only_drop_parts`)."""
    return (
        f"ALTER TABLE {identifier(database)}.{identifier(table)} "
        f"MODIFY TTL {ttl_clause(retention_days)} SETTINGS materialize_ttl_after_modify = 0"
    )


def cluster_ddl(cluster: str, database: str = DEFAULT_DATABASE, retention_days: int = 14) -> str:
    """DDL for a ClickHouse cluster: a ReplicatedMergeTree table on every node (`logs_local`)
    and a Distributed table (`logs`) over it, sharded by tenant and service so that a stream's
    lines stay on one shard. Writers and queries use `logs`, exactly as on one node."""
    cluster, database = identifier(cluster), identifier(database)
    local = f"{database}.{TABLE}_local"
    replicated = (
        f"ReplicatedMergeTree('/clickhouse/tables/{{shard}}/{database}/{TABLE}_local', "
        "'{replica}')"
    )
    body = _table_body(replicated, retention_days).replace(
        f"non_replicated_deduplication_window = {DEDUPLICATION_WINDOW}",
        f"replicated_deduplication_window = {DEDUPLICATION_WINDOW}",
    )
    statements = [
        f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}",
        f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster}\n{body}",
        f"CREATE TABLE IF NOT EXISTS {database}.{TABLE} ON CLUSTER {cluster} AS {local}\n"
        f"ENGINE = Distributed({cluster}, {database}, {TABLE}_local, "
        "cityHash64(tenant, service))",
    ]
    return ";\n\n".join(statements) + ";\n"
