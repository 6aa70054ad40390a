"""`python -m tests.logs.cluster_node DIR`: a one-node ClickHouse "cluster" in chDB, for
`test_cluster.py`. chDB has no cluster of its own; given a config with `remote_servers` and a
`tcp_port` that the shard's address matches, its one shard is local, so `Distributed` tables
and `clusterAllReplicas()` work in-process. Distributed DDL (`ON CLUSTER`) needs Keeper, which
chDB does not run: such statements are refused with "Replicated DDL queries are disabled".

Creates the cluster layout of `shopkeeper logs ddl --cluster` (a MergeTree `logs_local` stands
in for the Replicated one, which also needs Keeper), stores lines of three days through the
store, queries them, runs retention, and prints what happened as JSON."""

from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from shopkeeper.core.db import utcnow
from shopkeeper.logs.query.service import label_names, query_range, series, volume
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.retention import apply_retention
from shopkeeper.logs.store import records_batch, schema
from shopkeeper.logs.store.embedded import EmbeddedStore
from tests.conftest import make_settings

CLUSTER = "shopkeeper_test"
DATABASE = "cluster_logs"
_DB = "sqlite:///unused.db"
DAY_NS = 24 * 3600 * 1_000_000_000
_CONFIG = f"""<clickhouse>
  <tcp_port>9000</tcp_port>
  <query_log><database>system</database><table>query_log</table></query_log>
  <remote_servers>
    <{CLUSTER}>
      <shard><replica><host>localhost</host><port>9000</port></replica></shard>
    </{CLUSTER}>
  </remote_servers>
</clickhouse>
"""


def cluster_layout_sql() -> list[str]:
    """`schema.cluster_ddl`'s tables without `ON CLUSTER` and with a plain MergeTree."""
    local = schema.create_table_sql(DATABASE, 3650, f"{schema.TABLE}_local")
    return [
        *local,
        f"CREATE TABLE {DATABASE}.{schema.TABLE} AS {DATABASE}.{schema.TABLE}_local "
        f"ENGINE = Distributed({CLUSTER}, {DATABASE}, {schema.TABLE}_local, "
        "cityHash64(tenant, service))",
    ]


async def queries(store: EmbeddedStore, now_ns: int) -> dict[str, Any]:
    """The Loki API's reads through the Distributed table: a log query with a word filter, a
    metric query, the label names, the series and the volume."""
    window = {"start": now_ns - 7 * DAY_NS, "end": now_ns + 1}
    logs = await query_range(
        store,
        tenant="acme",
        query='{service=~".+"} |= "line 7"',
        step=60 * 10**9,
        limit=100,
        backward=True,
        **window,
    )
    counts = await query_range(
        store,
        tenant="acme",
        query='sum(count_over_time({service=~".+"}[7d]))',
        step=7 * DAY_NS,
        limit=100,
        backward=True,
        **window,
    )
    return {
        "word": sorted(line for stream in logs.result for _, line in stream["values"]),
        "count": [point[1] for series in counts.result for point in series["values"]],
        "labels": await label_names(store, tenant="acme", **window),
        "series": await series(store, tenant="globex", selectors=['{service=~".+"}'], **window),
        "volume": await volume(
            store, tenant="acme", selector='{service=~".+"}', target_labels=[], limit=10, **window
        ),
    }


async def main(directory: Path) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.xml"
    config.write_text(_CONFIG)
    data = directory / "data"
    # The first store of the process starts the engine with the cluster's configuration (in a
    # database of its own: opening creates a `logs` table there); the layout is made through
    # it before the store under test opens and finds `logs` to be a Distributed table.
    setup = EmbeddedStore(data, database="setup", retention_days=3650, config_file=config)
    await setup.open()
    for statement in cluster_layout_sql():
        await setup.command(statement)
    store = EmbeddedStore(data, database=DATABASE, retention_days=3650, config_file=config)
    await store.open()
    report: dict[str, Any] = {"cluster": store.cluster, "local_table": store.local_table}
    try:
        now = utcnow()
        now_ns = int(now.timestamp() * 1_000_000_000)
        for tenant, lines in (("acme", 30), ("globex", 20)):
            for days_ago in (0, 3, 6):
                records = [
                    LogRecord(
                        message=f"{tenant} line {n}",
                        timestamp_ns=now_ns - days_ago * DAY_NS - n,
                    )
                    for n in range(lines)
                ]
                await store.insert(records_batch(records, tenant=tenant, source="ndjson"))
        report["partitions"] = [
            {"id": p.id, "bytes": p.bytes, "rows": p.rows} for p in await store.partitions()
        ]
        report["local_parts"] = await store.query(
            "SELECT sum(bytes_on_disk) AS bytes, sum(rows) AS rows FROM system.parts "
            f"WHERE database = '{DATABASE}' AND table = 'logs_local' AND active"
        )
        report["queries"] = await queries(store, now_ns)
        await store.command("SYSTEM FLUSH LOGS")
        report["inserts"] = await store.query(
            "SELECT tables, Settings['distributed_foreground_insert'] AS foreground "
            "FROM system.query_log WHERE query_kind = 'Insert' AND type = 'QueryFinish' "
            "ORDER BY event_time_microseconds"
        )
        report["oldest_day"] = (now - timedelta(days=6)).strftime("%Y%m%d")
        for name, settings in (
            # Days older than 5: the oldest partition goes.
            ("retention", make_settings(_DB, directory, logs_retention_days=5)),
            # One tenant keeps 2 days: its older lines are deleted.
            (
                "tenant",
                make_settings(
                    _DB, directory, logs_retention_days=3650, logs_retention_tenant_days={"acme": 2}
                ),
            ),
        ):
            try:
                await apply_retention(store, settings, now=now)
                report[name] = "applied"
            except Exception as exc:
                report[name] = str(exc)
        # The statements ClickHouse refused, as it received them.
        await store.command("SYSTEM FLUSH LOGS")
        report["refused"] = [
            row["query"]
            for row in await store.query(
                "SELECT query FROM system.query_log WHERE type = 'ExceptionBeforeStart' "
                "ORDER BY event_time_microseconds"
            )
        ]
    finally:
        await store.close()
        await setup.close()
    return report


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(main(Path(sys.argv[1])))).decode())
