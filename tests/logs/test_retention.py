"""Retention drops whole daily partitions past the longest retention and trims tenants with a
shorter one; the disk guard drops the oldest partitions first and nothing newer than it must."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from shopkeeper.core.db import utcnow
from shopkeeper.core.settings import Settings
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.retention import apply_retention
from shopkeeper.logs.store import LogStore, records_batch
from shopkeeper.logs.store.embedded import EmbeddedStore
from tests.conftest import make_settings

DAY_NS = 24 * 3600 * 1_000_000_000


@pytest.fixture
async def own_store(log_store: LogStore, logs_dir: Path) -> AsyncIterator[LogStore]:
    """A table of this test alone, in the chDB engine the other logs tests share (retention
    drops whole partitions, which would take other tests' lines with them)."""
    store = EmbeddedStore(
        logs_dir, database=f"retention_{secrets.token_hex(4)}", retention_days=3650
    )
    await store.open()
    try:
        yield store
    finally:
        await store.command(f"DROP DATABASE IF EXISTS {store.database}")
        await store.close()


def retention_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for `apply_retention`; the SQL database is never opened."""
    return make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path, **overrides)


async def store_days(
    store: LogStore, now: datetime, tenants: list[str], days_ago: list[int], lines: int = 50
) -> None:
    now_ns = int(now.timestamp() * 1_000_000_000)
    for tenant in tenants:
        for days in days_ago:
            records = [
                LogRecord(message=f"{tenant} line {n}", timestamp_ns=now_ns - days * DAY_NS - n)
                for n in range(lines)
            ]
            await store.insert(records_batch(records, tenant=tenant, source="ndjson"))


async def lines_per_day(store: LogStore, tenant: str) -> dict[int, int]:
    rows = await store.query(
        f"SELECT dateDiff('day', toDate(timestamp), today()) AS days_ago, count() AS n "
        f"FROM {store.table} WHERE tenant = {{tenant:String}} GROUP BY days_ago",
        {"tenant": tenant},
    )
    return {int(row["days_ago"]): int(row["n"]) for row in rows}


async def test_retention_drops_old_partitions_and_trims_shorter_tenants(
    own_store: LogStore, tmp_path: Path
) -> None:
    settings = retention_settings(
        tmp_path,
        logs_retention_days=14,
        logs_retention_tenant_days={"brief": 2, "archive": 30},
    )
    now = utcnow().replace(hour=12)
    await store_days(own_store, now, ["plain", "brief", "archive"], [40, 20, 10, 3, 0])

    report = await apply_retention(own_store, settings, now=now)

    # Past the longest retention (30 days) the whole day goes, partition and all.
    forty = (now - timedelta(days=40)).strftime("%Y%m%d")
    assert report.dropped_for_retention == [forty]
    assert forty not in {p.id for p in await own_store.partitions()}
    assert await lines_per_day(own_store, "archive") == {20: 50, 10: 50, 3: 50, 0: 50}
    assert await lines_per_day(own_store, "plain") == {10: 50, 3: 50, 0: 50}
    assert await lines_per_day(own_store, "brief") == {0: 50}
    assert sorted(report.tenants_trimmed) == ["*", "brief"]

    # Applied again, nothing more goes.
    again = await apply_retention(own_store, settings, now=now)
    assert again.dropped_for_retention == [] and again.tenants_trimmed == []
    assert await lines_per_day(own_store, "archive") == {20: 50, 10: 50, 3: 50, 0: 50}


async def test_the_disk_guard_drops_the_oldest_partitions_and_nothing_newer(
    own_store: LogStore, tmp_path: Path
) -> None:
    now = utcnow().replace(hour=12)
    await store_days(own_store, now, ["t"], [6, 5, 4, 3, 2, 1, 0], lines=2000)
    # Every day at its final codec before sizes are read: background merges recompress the days
    # at rest (ZSTD(12)), and would otherwise shrink them while the guard measures.
    await own_store.command(f"OPTIMIZE TABLE {own_store.table} FINAL")
    partitions = await own_store.partitions()
    assert len(partitions) == 7
    total = sum(p.bytes for p in partitions)
    # Room for all but the three oldest days (and a byte less than four would need).
    limit = total - sum(p.bytes for p in partitions[:3])
    settings = retention_settings(tmp_path, logs_max_disk_bytes=limit)

    drops = ("shopkeeper_logs_partitions_dropped_total", {"reason": "disk"})
    before = REGISTRY.get_sample_value(*drops) or 0
    with capture_logs() as logged:
        report = await apply_retention(own_store, settings, now=now)

    assert report.dropped_for_disk == [p.id for p in partitions[:3]]
    assert REGISTRY.get_sample_value(*drops) == before + 3
    warned = [e["partition"] for e in logged if e["event"] == "logs_disk_guard_dropped_partition"]
    assert warned == report.dropped_for_disk
    assert [p.id for p in await own_store.partitions()] == [p.id for p in partitions[3:]]
    assert await lines_per_day(own_store, "t") == {3: 2000, 2: 2000, 1: 2000, 0: 2000}
    assert report.bytes_after <= limit


async def test_the_disk_guard_never_drops_todays_partition(
    own_store: LogStore, tmp_path: Path
) -> None:
    now = utcnow().replace(hour=12)
    await store_days(own_store, now, ["t"], [1, 0])
    settings = retention_settings(tmp_path, logs_max_disk_bytes=1)
    report = await apply_retention(own_store, settings, now=now)
    assert len(report.dropped_for_disk) == 1
    assert await lines_per_day(own_store, "t") == {0: 50}


async def test_a_shorter_tenant_loses_whole_days_once_not_a_few_minutes_every_run(
    own_store: LogStore, tmp_path: Path
) -> None:
    settings = retention_settings(
        tmp_path,
        logs_retention_days=14,
        logs_retention_tenant_days={"brief": 2},
    )
    now = utcnow().replace(hour=12, minute=0)
    now_ns = int(now.timestamp() * 1_000_000_000)
    # Two days and an hour ago is past the 2 days, but on the oldest day they keep.
    hour = 3600 * 1_000_000_000
    records = [
        LogRecord(message=f"brief {n}", timestamp_ns=now_ns - 2 * DAY_NS - hour - n)
        for n in range(10)
    ]
    await own_store.insert(records_batch(records, tenant="brief", source="ndjson"))
    await store_days(own_store, now, ["brief"], [3])

    first = await apply_retention(own_store, settings, now=now)
    assert first.tenants_trimmed == ["brief"]
    assert await lines_per_day(own_store, "brief") == {2: 10}

    # The next runs of the day delete nothing; the day after, that day goes too.
    later = await apply_retention(own_store, settings, now=now + timedelta(minutes=5))
    assert later.tenants_trimmed == []
    assert await lines_per_day(own_store, "brief") == {2: 10}
    next_day = await apply_retention(own_store, settings, now=now + timedelta(hours=13))
    assert next_day.tenants_trimmed == ["brief"]
    assert await lines_per_day(own_store, "brief") == {}
