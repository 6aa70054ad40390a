"""Retention of stored lines: whole daily partitions past the longest retention are dropped;
tenants with a shorter retention (`SHOPKEEPER_LOGS_RETENTION_TENANT_DAYS`) lose their older
lines by a lightweight DELETE, since a day's partition holds every tenant. A disk guard drops
the oldest partitions first, never today's, while the store takes more than
`SHOPKEEPER_LOGS_MAX_DISK_BYTES` (on a cluster, on its fullest node: the store reads every
node's parts and drops or deletes on every node)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import structlog
from prometheus_client import Counter, Gauge

from shopkeeper.core.db import utcnow
from shopkeeper.core.settings import Settings
from shopkeeper.logs.store import LogStore
from shopkeeper.logs.store.base import Partition

log = structlog.get_logger(__name__)

PARTITIONS_DROPPED = Counter(
    "shopkeeper_logs_partitions_dropped_total",
    "Daily log partitions dropped, by reason (retention, disk)",
    ["reason"],
)
ROWS_DROPPED = Counter(
    "shopkeeper_logs_retention_rows_dropped_total",
    "Log lines dropped with their partitions, by reason (retention, disk)",
    ["reason"],
)
STORE_BYTES = Gauge(
    "shopkeeper_logs_store_bytes", "Bytes the log table takes on disk (a cluster's fullest node)"
)


@dataclass
class RetentionReport:
    dropped_for_retention: list[str] = field(default_factory=list)
    dropped_for_disk: list[str] = field(default_factory=list)
    tenants_trimmed: list[str] = field(default_factory=list)
    bytes_after: int = 0


def oldest_kept_day(now: datetime, days: int) -> date:
    """Partitions of days before this one hold only lines older than `days` days."""
    return (now - timedelta(days=days)).date()


async def apply_retention(
    store: LogStore, settings: Settings, *, now: datetime | None = None
) -> RetentionReport:
    now = now or utcnow()
    report = RetentionReport()
    partitions = await store.partitions()
    keep_from = oldest_kept_day(now, settings.logs_longest_retention_days)
    for partition in partitions:
        if partition.day < keep_from:
            await _drop(store, partition, "retention")
            report.dropped_for_retention.append(partition.id)
    partitions = [p for p in partitions if p.id not in report.dropped_for_retention]
    report.tenants_trimmed = await _trim_shorter_tenants(store, settings, now, partitions)
    if settings.logs_max_disk_bytes is not None:
        partitions = await _guard_disk(store, settings.logs_max_disk_bytes, report)
    report.bytes_after = sum(p.bytes for p in partitions)
    STORE_BYTES.set(report.bytes_after)
    return report


async def _trim_shorter_tenants(
    store: LogStore, settings: Settings, now: datetime, partitions: list[Partition]
) -> list[str]:
    """Delete lines of tenants whose retention is shorter than the table's; "*" stands for
    every tenant without an override (they have `logs_retention_days`).

    A whole day (UTC) at a time, as partitions are dropped: lines before the first day the
    retention keeps (`oldest_kept_day`) go, so a tenant keeps at least its days and less than
    a day more. With an exact cutoff, every run (every 5 minutes) would find a few minutes of
    newly expired lines and DELETE again: a lightweight DELETE rewrites a mask in every part
    it touches, so that would be ~288 of them a day per tenant instead of one."""
    longest = settings.logs_longest_retention_days
    overrides = settings.logs_retention_tenant_days
    if not partitions:
        return []
    oldest_day = partitions[0].day
    trimmed: list[str] = []
    targets: list[tuple[str, int]] = [(t, d) for t, d in sorted(overrides.items()) if d < longest]
    if settings.logs_retention_days < longest:
        targets.append(("*", settings.logs_retention_days))
    for tenant, days in targets:
        kept_from = oldest_kept_day(now, days)
        if oldest_day >= kept_from:
            continue  # nothing stored is that old
        cutoff = datetime.combine(kept_from, time.min, tzinfo=UTC)
        if tenant == "*":
            where = "NOT has({tenants:Array(String)}, tenant)"
            parameters: dict[str, object] = {"tenants": sorted(overrides)}
        else:
            where, parameters = "tenant = {tenant:String}", {"tenant": tenant}
        parameters["cutoff"] = int(cutoff.timestamp() * 1_000_000_000)
        condition = f"{where} AND timestamp < fromUnixTimestamp64Nano({{cutoff:Int64}}, 'UTC')"
        # Our own fragments; tenants and times are bound parameters.
        count_sql = f"SELECT count() AS n FROM {store.table} WHERE {condition}"  # noqa: S608
        found = await store.query(count_sql, parameters)
        if not found or int(found[0]["n"]) == 0:
            continue
        await store.delete_lines(condition, parameters)
        trimmed.append(tenant)
        log.info("logs_retention_trimmed", tenant=tenant, days=days, lines=int(found[0]["n"]))
    return trimmed


async def _guard_disk(store: LogStore, max_bytes: int, report: RetentionReport) -> list[Partition]:
    partitions = await store.partitions()
    total = sum(p.bytes for p in partitions)
    # Never the newest partition: it holds what is being written now.
    while total > max_bytes and len(partitions) > 1:
        oldest = partitions.pop(0)
        await _drop(store, oldest, "disk")
        total -= oldest.bytes
        report.dropped_for_disk.append(oldest.id)
        log.warning(
            "logs_disk_guard_dropped_partition",
            partition=oldest.id,
            bytes=oldest.bytes,
            rows=oldest.rows,
            store_bytes=total,
            max_bytes=max_bytes,
        )
    if total > max_bytes:
        log.warning("logs_disk_guard_over_limit", store_bytes=total, max_bytes=max_bytes)
    return partitions


async def _drop(store: LogStore, partition: Partition, reason: str) -> None:
    await store.drop_partition(partition.id)
    PARTITIONS_DROPPED.labels(reason).inc()
    ROWS_DROPPED.labels(reason).inc(partition.rows)
    if reason == "retention":
        log.info("logs_retention_dropped_partition", partition=partition.id, rows=partition.rows)
