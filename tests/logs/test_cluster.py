"""The store on a cluster, where `logs` is a Distributed table. Retention reads the days from
every node's parts and drops or trims them on every node's `logs_local` (`ON CLUSTER`). An
INSERT answers only once the shards have stored it. Queries read through `logs`.

Run in a one-node cluster of chDB (`tests/logs/cluster_node.py`), in a process of its own:
chDB takes its configuration from the first store of a process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from shopkeeper.logs.store import LogStore, schema

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_cluster_is_queried_written_and_retained_through_its_distributed_table(
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
    # The Loki API's reads through the Distributed table: acme's 30 lines a day over 3 days.
    queries = report["queries"]
    assert queries["word"] == ["acme line 7"] * 3
    assert queries["count"] == ["90"]
    assert queries["labels"] == ["level", "service", "source"]
    assert queries["series"] == [
        {"level": "unknown", "service": "unknown_service", "source": "ndjson"}
    ]
    # "acme line N": 11 bytes for N < 10, 12 for the other 20, on each of 3 days.
    assert queries["volume"][0]["value"][1] == str(3 * (10 * 11 + 20 * 12))
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
    # ClickHouse allows more in a cluster's name than in a table's; `ON CLUSTER` quotes it.
    assert schema.distributed_target("Distributed('eu-logs.2', 'db', 't')") == (
        "eu-logs.2",
        "db.t",
    )
    assert schema.drop_partition_sql("db.t", "20261201", "eu-logs.2") == (
        "ALTER TABLE db.t ON CLUSTER `eu-logs.2` DROP PARTITION ID '20261201'"
    )
    assert schema.distributed_target("MergeTree PARTITION BY toDate(timestamp)") is None
    assert schema.distributed_target("Merge(db, '^logs_local$')") is None
    with pytest.raises(ValueError, match="not a plain identifier"):
        schema.distributed_target("Distributed('c', 'db', 'x; DROP')")
    with pytest.raises(ValueError, match="not a cluster name"):
        schema.distributed_target("Distributed('c`x', 'db', 't')")


async def test_the_cluster_statements_are_valid_clickhouse_sql(log_store: LogStore) -> None:
    statements = [
        schema.drop_partition_sql("shopkeeper_logs.logs_local", "20261201", "logs_cluster"),
        schema.delete_sql("shopkeeper_logs.logs_local", "tenant = {t:String}", "logs_cluster"),
        schema.partitions_sql("logs_cluster"),
        schema.drop_partition_sql("shopkeeper_logs.logs_local", "20261201", "eu-logs.2"),
        schema.partitions_sql("eu-logs.2"),
    ]
    for statement in statements:
        rows = await log_store.query("SELECT formatQuery({sql:String}) AS q", {"sql": statement})
        assert rows[0]["q"]
    with pytest.raises(ValueError, match="daily partition"):
        schema.drop_partition_sql("shopkeeper_logs.logs_local", "2026'; DROP", "logs_cluster")
