"""Retention on a cluster: `logs` is a Distributed table, so the days are read from every
node's parts and dropped or trimmed on every node's `logs_local` (`ON CLUSTER`), and an INSERT
answers only once the shards have stored it. Run in a one-node cluster of chDB
(`tests/logs/cluster_node.py`), in a process of its own: chDB takes its configuration from the
first store of a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shopkeeper.logs.store import LogStore, schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_retention_reads_every_node_and_alters_the_local_tables_on_the_cluster(
    tmp_path: Path,
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.logs.cluster_node", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = orjson.loads(result.stdout.strip().splitlines()[-1])

    assert report["cluster"] == "shopkeeper_test"
    assert report["local_table"] == "cluster_logs.logs_local"
    # Three days of 50 lines each (two tenants), read through the cluster: the same bytes as
    # the local table's parts, the oldest day first.
    partitions = report["partitions"]
    assert [p["rows"] for p in partitions] == [50, 50, 50]
    assert partitions[0]["id"] == report["oldest_day"]
    assert sum(p["bytes"] for p in partitions) == report["local_parts"][0]["bytes"] > 0
    # Every INSERT went through the Distributed table, synchronously.
    assert len(report["inserts"]) == 6
    for insert in report["inserts"]:
        assert "cluster_logs.logs" in insert["tables"]
        assert insert["foreground"] == "1"
    # chDB runs no Keeper, so it refuses distributed DDL: the statements it was sent show
    # that retention went to every node's local table.
    assert "Replicated DDL queries are disabled" in report["retention"]
    assert "Replicated DDL queries are disabled" in report["tenant"]
    drop, delete = report["refused"]
    assert drop == (
        "ALTER TABLE cluster_logs.logs_local ON CLUSTER shopkeeper_test "
        f"DROP PARTITION ID '{report['oldest_day']}'"
    )
    assert delete.startswith(
        "DELETE FROM cluster_logs.logs_local ON CLUSTER shopkeeper_test WHERE (tenant = 'acme')"
    )


def test_the_distributed_table_names_its_cluster_and_local_table() -> None:
    assert schema.distributed_target(
        "Distributed('shop_logs', 'shopkeeper_logs', 'logs_local', cityHash64(tenant, service))"
    ) == ("shop_logs", "shopkeeper_logs.logs_local")
    assert schema.distributed_target("Distributed(c1, db, t_local)") == ("c1", "db.t_local")
    assert schema.distributed_target("MergeTree PARTITION BY toDate(timestamp)") is None
    assert schema.distributed_target("Merge(db, '^logs_local$')") is None
    with pytest.raises(ValueError, match="not a plain identifier"):
        schema.distributed_target("Distributed('c', 'db', 'x; DROP')")


async def test_the_cluster_statements_are_valid_clickhouse_sql(log_store: LogStore) -> None:
    statements = [
        schema.drop_partition_sql("shopkeeper_logs.logs_local", "20261201", "logs_cluster"),
        schema.delete_sql("shopkeeper_logs.logs_local", "tenant = {t:String}", "logs_cluster"),
        schema.partitions_sql("logs_cluster"),
    ]
    for statement in statements:
        rows = await log_store.query("SELECT formatQuery({sql:String}) AS q", {"sql": statement})
        assert rows[0]["q"]
    with pytest.raises(ValueError, match="daily partition"):
        schema.drop_partition_sql("shopkeeper_logs.logs_local", "2026'; DROP", "logs_cluster")
