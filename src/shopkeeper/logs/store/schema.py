"""The one log table: its DDL (single node and cluster) and the SQL that turns raw NDJSON lines
into rows, so that ClickHouse, not Python, parses the hot path."""

from __future__ import annotations

import re

TABLE = "logs"
DEFAULT_DATABASE = "shopkeeper_logs"

COLUMNS: tuple[tuple[str, str], ...] = (
    # ZSTD rather than the default LZ4: a LowCardinality column's row keys are what is left
    # once the dictionary is shared, and ZSTD halves them (host 1.0 -> 0.5 bytes a line).
    ("tenant", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("service", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("host", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("level", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("source", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("timestamp", "DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1))"),
    ("observed_at", "DateTime64(9, 'UTC') CODEC(Delta(8), ZSTD(1))"),
    # The table's default codec (`DEFAULT_CODEC`, ZSTD(3)) while a day is written, and
    # `RECOMPRESS_CODEC` once it is over (`recompress_ttl`): `CODEC(Default)` is what lets the
    # recompression TTL reach a column, an explicit codec would be kept.
    ("message", "String CODEC(Default)"),
    ("trace_id", "String CODEC(ZSTD(1))"),
    ("span_id", "String CODEC(ZSTD(1))"),
    # ZSTD(3) (the default codec, then recompressed like the message) halves the map and all but
    # removes `label_keys` (the same few keys on every line); ZSTD(1) does not find those repeats.
    ("attributes", "Map(LowCardinality(String), String) CODEC(Default)"),
    # Which keys of `attributes` arrived as stream labels (Loki push labels, OTLP resource
    # attributes); every other attribute is structured metadata. All of them live in one map so
    # that a filter on any attribute is one map lookup.
    ("label_keys", "Array(LowCardinality(String)) CODEC(ZSTD(3))"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)

# Tokens the text index leaves out: long numbers and long hex strings (ids, order numbers,
# hashes). Nearly every line has its own, so they were half of the index (a posting list and a
# dictionary entry each, for a handful of lines); a bloom filter answers them for a tenth of
# that. The same rule three times: in SQL over one token `t` (below), in Python
# (`is_unindexed_token`), and the tokenizer is ClickHouse's `splitByNonAlpha` throughout.
_UNINDEXED_SQL = (
    "(length(t) >= 5 AND match(t, '^[0-9]+$')) OR (length(t) >= 16 AND match(t, '^[0-9A-Fa-f]+$'))"
)
_UNINDEXED_TOKEN = re.compile(r"[0-9]{5,}|[0-9A-Fa-f]{16,}")
# The unindexed tokens of a line. A query finds such a token with `has(<this>, token)`: the
# `message_numbers` bloom filter is built on exactly this expression, so it skips granules.
UNINDEXED_TOKENS = f"arrayFilter(t -> {_UNINDEXED_SQL}, splitByNonAlpha(message))"
# The text index's preprocessor: the line with its unindexed tokens left out. ClickHouse applies
# it to a `hasToken` needle too, so `hasToken(message, '123456')` would find nothing: queries
# must ask `has(UNINDEXED_TOKENS, ...)` for such tokens (the LogQL compiler does).
_INDEXED_TEXT = (
    f"arrayStringConcat(arrayFilter(t -> NOT ({_UNINDEXED_SQL}), splitByNonAlpha(message)), ' ')"
)


def is_unindexed_token(token: str) -> bool:
    """Whether the text index leaves `token` (one `splitByNonAlpha` token) out."""
    return bool(_UNINDEXED_TOKEN.fullmatch(token))


INDEXES: tuple[str, ...] = (
    # A word search (`hasToken`, `|= "word"`) reads only the granules holding the token.
    # Bit-packed posting lists: a third smaller than the default roaring-like ones for words
    # in ~1% of the lines, which is most of what is left once the numbers are out.
    "INDEX message_text message TYPE text(tokenizer = splitByNonAlpha, "
    f"preprocessor = {_INDEXED_TEXT}, posting_list_codec = 'bitpacking')",
    f"INDEX message_numbers {UNINDEXED_TOKENS} TYPE bloom_filter(0.05) GRANULARITY 1",
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
# ~10 after 2 million lines here; queries read a few more parts). A base of 20 took merges
# further out of the ingest's way: 4 senders' rounds of ~43,000 lines, INSERTed back to back
# for 10 s in one chDB, 272,000 lines/s against 238,000 at 10 and 275,000 at 30, with 15.8
# active parts on average (max 25) against 13.8 (26) at 10 and 19.6 (35) at 30. Parts older
# than a few seconds are merged at a lowered base anyway, so the parts a query reads barely
# grow. Tables created with another base are brought to this one when the store opens.
MERGE_SELECTOR_BASE = 20
# Vertical merges (the sorting key's columns merged first, then every other column on its own,
# in the order found) from the first non-key column, where ClickHouse waits for 11 and this
# table has 9: merging ten parts of 43,000 lines took 8-10% less CPU (827-855 against 925 ms),
# with the same bytes, and a merge holds one column's blocks at a time instead of all of them.
# Small merges (under 131,072 rows, ClickHouse's default) stay horizontal.
VERTICAL_MERGE_MIN_COLUMNS = 1
MERGE_SETTINGS: tuple[tuple[str, int], ...] = (
    ("merge_selector_base", MERGE_SELECTOR_BASE),
    ("vertical_merge_algorithm_min_columns_to_activate", VERTICAL_MERGE_MIN_COLUMNS),
)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def cluster_name(name: str) -> str:
    """A cluster's name (`remote_servers`), checked: letters, digits, `_`, `.` and `-`."""
    if not _CLUSTER_NAME.match(name):
        raise ValueError(f"not a cluster name: {name!r}")
    return name


def cluster_sql(name: str) -> str:
    """A cluster's name as `ON CLUSTER` takes it: quoted unless it is a plain identifier."""
    return name if _IDENTIFIER.match(name) else f"`{cluster_name(name)}`"


def identifier(name: str) -> str:
    """A database, table or cluster name, checked: these are pasted into DDL, not bound."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


# Codecs of the columns declared `CODEC(Default)` (the message, the attributes) and of the index
# files. ZSTD(3) while a day is being written: ingest is CPU-bound and every fresh line is
# compressed again by each merge (ZSTD(3) 283 MB/s on these messages, ZSTD(12) several times
# slower). Once the day is over, one merge per day's partition rewrites them at ZSTD(12):
# message -1.9 bytes a line on bench.logs_query's data (ZSTD(9) -1.2, ZSTD(15) -2.6 at twice
# ZSTD(12)'s CPU, ZSTD(19) -3.8 at six times); zstd decompresses every level at the same speed,
# so queries do not pay for it.
DEFAULT_CODEC = "ZSTD(3)"
RECOMPRESS_CODEC = "ZSTD(12)"
# A day's lines are recompressed an hour after the day (UTC) ends. Tied to the partition (one
# value for all of a day's lines) rather than to each line's age, so that a line is recompressed
# once: with `timestamp + 1 hour`, today's recompressed parts would be written back at ZSTD(3)
# by the next merge with fresh parts, and recompressed again hours later. The hour is for late
# lines; a part arriving later still in an old day is written at ZSTD(12) by its next merge.
RECOMPRESS_AFTER_HOURS = 25


def recompress_ttl() -> str:
    return (
        f"toDateTime(toDate(timestamp), 'UTC') + toIntervalHour({RECOMPRESS_AFTER_HOURS}) "
        f"RECOMPRESS CODEC({RECOMPRESS_CODEC})"
    )


def ttl_clause(retention_days: int) -> str:
    """The table's TTL: whole days dropped after the retention, and days at rest recompressed."""
    return f"toDateTime(timestamp) + toIntervalDay({int(retention_days)}), {recompress_ttl()}"


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
        f"{merge_setting()}, "
        f"default_compression_codec = '{DEFAULT_CODEC}'"
    )


def create_table_sql(database: str, retention_days: int, table: str = TABLE) -> list[str]:
    """Statements creating the database and the table on one node (chDB or one server)."""
    database, table = identifier(database), identifier(table)
    return [
        f"CREATE DATABASE IF NOT EXISTS {database}",
        f"CREATE TABLE IF NOT EXISTS {database}.{table}\n"
        + _table_body("MergeTree", retention_days),
    ]


def merge_setting() -> str:
    return ", ".join(f"{name} = {value}" for name, value in MERGE_SETTINGS)


def merge_settings_missing(engine_full: str) -> bool:
    """Whether a table (its `system.tables.engine_full`) lacks one of `MERGE_SETTINGS`."""
    return any(f"{name} = {value}" not in engine_full for name, value in MERGE_SETTINGS)


def modify_merge_setting_sql(database: str, table: str = TABLE) -> str:
    """Brings an existing table to the current `MERGE_SETTINGS`."""
    return (
        f"ALTER TABLE {identifier(database)}.{identifier(table)} MODIFY SETTING {merge_setting()}"
    )


def modify_ttl_sql(database: str, retention_days: int, table: str = TABLE) -> str:
    """Applies a changed retention to an existing table; parts already written keep their TTL
    until merged, and whole expired parts are dropped (`ttl_only_drop_parts`)."""
    return (
        f"ALTER TABLE {identifier(database)}.{identifier(table)} "
        f"MODIFY TTL {ttl_clause(retention_days)} SETTINGS materialize_ttl_after_modify = 0"
    )


# Issue 12's storage work changed codecs and the message indexes. A table created before it
# (recognised by having `message_text` but not `message_numbers`) is brought up to date by
# these ALTERs: codecs are metadata only (new parts and merges use them), the text index is
# rebuilt with the new definition and the bloom filter added, both materialized for the parts
# already written by a background mutation. Every query stays correct meanwhile: a part without
# an index is scanned, and an old-style text index holds every token the compiler asks it for.
_MIGRATED_COLUMNS = (
    "tenant",
    "service",
    "host",
    "level",
    "source",
    "message",
    "attributes",
    "label_keys",
)


def _index(name: str) -> str:
    (definition,) = (index for index in INDEXES if index.startswith(f"INDEX {name} "))
    return definition.removeprefix("INDEX ")


def needs_storage_migration(index_names: set[str]) -> bool:
    """Whether a table with these skip indexes predates the current message indexes."""
    return "message_text" in index_names and "message_numbers" not in index_names


def needs_codec_migration(codecs: dict[str, str]) -> bool:
    """Whether a table whose columns have these codecs (`system.columns.compression_codec`)
    predates the recompression of days at rest: its message keeps an explicit codec, which the
    recompression TTL would not touch."""
    return codecs.get("message") != "CODEC(Default)"


def _target(table: str, on_cluster: str) -> str:
    database, name = (identifier(part) for part in table.split("."))
    return f"{database}.{name}" + (f" ON CLUSTER {cluster_sql(on_cluster)}" if on_cluster else "")


def codec_migration_sql(table: str, on_cluster: str = "") -> list[str]:
    """The ALTERs that give a table the current codecs: the default codec first, so that parts
    written after the columns turn to `CODEC(Default)` are ZSTD(3), not the server's LZ4.
    Metadata only: new parts and merges use them. The recompression TTL itself comes with the
    TTL (`modify_ttl_sql`, run first); `MATERIALIZE TTL` then computes it for the parts already
    written (a background mutation that reads `timestamp`), after which background merges
    recompress the days already at rest, once: without it they would keep their codec until
    the retention drops them."""
    target = _target(table, on_cluster)
    kinds = dict(COLUMNS)
    columns = ", ".join(f"MODIFY COLUMN {column} {kinds[column]}" for column in _MIGRATED_COLUMNS)
    return [
        f"ALTER TABLE {target} MODIFY SETTING default_compression_codec = '{DEFAULT_CODEC}'",
        f"ALTER TABLE {target} {columns}",
        f"ALTER TABLE {target} MATERIALIZE TTL",
    ]


def storage_migration_sql(table: str, on_cluster: str = "") -> list[str]:
    """The ALTERs that bring a table created with the DDL before issue 12's storage work to the
    current one (run in this order). `table` is `database.table`, checked; `on_cluster` names
    a cluster."""
    target = _target(table, on_cluster)
    return [
        *codec_migration_sql(table, on_cluster),
        f"ALTER TABLE {target} DROP INDEX message_text",
        f"ALTER TABLE {target} ADD INDEX {_index('message_text')} FIRST",
        f"ALTER TABLE {target} ADD INDEX {_index('message_numbers')} AFTER message_text",
        f"ALTER TABLE {target} MATERIALIZE INDEX message_text, MATERIALIZE INDEX message_numbers",
    ]


def cluster_migration_ddl(
    cluster: str, database: str = DEFAULT_DATABASE, retention_days: int = 14
) -> str:
    """For the `logs_local` tables of a cluster (see `cluster_ddl`): the current TTL (retention
    and recompression), then `storage_migration_sql`. A table that already has
    `message_numbers` needs only the first four statements (the rest rebuild its indexes)."""
    local = f"{identifier(database)}.{TABLE}_local"
    ttl = (
        f"ALTER TABLE {_target(local, cluster)} MODIFY TTL {ttl_clause(retention_days)} "
        "SETTINGS materialize_ttl_after_modify = 0"
    )
    return ";\n\n".join([ttl, *storage_migration_sql(local, cluster)]) + ";\n"


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


# Retention's statements (`logs.retention`), for one node or a cluster. On a cluster, `logs`
# is a Distributed table: it holds no parts and takes neither DROP PARTITION nor DELETE, so
# they go to every node's `logs_local` `ON CLUSTER`, and the parts are read from every replica.
_DISTRIBUTED = re.compile(
    r"^Distributed\(\s*'?(?P<cluster>[^',\s()]+)'?\s*,\s*'?(?P<database>[^',\s()]+)'?\s*,"
    r"\s*'?(?P<table>[^',\s()]+)'?"
)
PARTITION_ID = re.compile(r"[0-9]{8}")


def distributed_target(engine_full: str) -> tuple[str, str] | None:
    """`(cluster, database.table)` a Distributed table's `system.tables.engine_full` names,
    checked; None for any other engine."""
    found = _DISTRIBUTED.match(engine_full)
    if found is None:
        return None
    local = f"{identifier(found['database'])}.{identifier(found['table'])}"
    return cluster_name(found["cluster"]), local


def partitions_sql(cluster: str = "") -> str:
    """Each daily partition of a table (bound `database`, `table`): its bytes on disk and its
    rows, oldest first. On a cluster, `bytes` is the most any one node holds of that day (a
    disk fills node by node) and `rows` the day's lines once (one replica of each shard)."""
    if not cluster:
        return (
            "SELECT partition_id, sum(bytes_on_disk) AS bytes, sum(rows) AS rows "
            "FROM system.parts WHERE database = {database:String} AND table = {table:String} "
            "AND active GROUP BY partition_id ORDER BY partition_id"
        )
    # `shardNum()` and `hostName()` are evaluated on each node the query reaches. Only the
    # cluster's name (checked) is pasted: a table function takes no parameter.
    per_node = (
        "SELECT shardNum() AS shard, hostName() AS node, partition_id, "  # noqa: S608
        "sum(bytes_on_disk) AS node_bytes, sum(rows) AS node_rows "
        f"FROM clusterAllReplicas('{cluster_name(cluster)}', system.parts) "
        "WHERE database = {database:String} AND table = {table:String} AND active "
        "GROUP BY shard, node, partition_id"
    )
    # The two outer levels paste only the inner statement, built above.
    per_shard = (
        "SELECT partition_id, max(node_bytes) AS shard_bytes, "  # noqa: S608
        f"max(node_rows) AS shard_rows FROM ({per_node}) GROUP BY partition_id, shard"
    )
    return (
        "SELECT partition_id, max(shard_bytes) AS bytes, sum(shard_rows) AS rows "  # noqa: S608
        f"FROM ({per_shard}) GROUP BY partition_id ORDER BY partition_id"
    )


def drop_partition_sql(table: str, partition_id: str, cluster: str = "") -> str:
    """Drops one daily partition (`YYYYMMDD`) of `table` (`database.table`), on every node of
    `cluster` when given."""
    if not PARTITION_ID.fullmatch(partition_id):
        raise ValueError(f"not a daily partition id: {partition_id!r}")
    return f"ALTER TABLE {_target(table, cluster)} DROP PARTITION ID '{partition_id}'"


def delete_sql(table: str, condition: str, cluster: str = "") -> str:
    """A lightweight DELETE of the lines of `table` matching `condition` (our own SQL, whose
    values are bound parameters), on every node of `cluster` when given."""
    # The table and cluster are checked names; `condition` is retention's own SQL with its
    # tenants and times bound, never a value from a request.
    return f"DELETE FROM {_target(table, cluster)} WHERE {condition}"  # noqa: S608
