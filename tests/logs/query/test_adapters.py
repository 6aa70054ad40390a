"""The compiled SQL and its bound parameters give the same answers through clickhouse-connect
(the production adapter, here on chDB; on a real server when SHOPKEEPER_TEST_CLICKHOUSE_URL is
set the store tests cover the adapter) as through chDB directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.query import service
from shopkeeper.logs.store import LogStore
from shopkeeper.logs.store.server import ServerStore
from tests.logs.query.conftest import NS, Dataset

QUERIES = [
    '{service="shop", level=~"warn|error"} |= "timeout" != "cache miss"',
    '{service=~".+", http_status="500"} |~ "took \\\\d+ms" | trace_id!=""',
    '{service="api"} | json | status >= 500 | line_format "{{.msg}}"',
    'sum by (level) (count_over_time({service="shop"} |= "ok" [5m]))',
    'bytes_rate({service="worker"}[10m])',
    'quantile_over_time(0.5, {service="api"} | logfmt | unwrap duration(latency) '
    '| __error__="" [10m]) by (host)',
]


@pytest.fixture
async def connect_store(logs_settings: Settings) -> AsyncIterator[LogStore]:
    store = ServerStore(
        f"chdb://{logs_settings.logs_path.resolve()}",
        database=logs_settings.logs_database,
        retention_days=logs_settings.logs_retention_days,
    )
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize("logql", QUERIES)
async def test_same_answers_through_clickhouse_connect(
    log_store: LogStore, connect_store: LogStore, dataset: Dataset, logql: str
) -> None:
    end = (dataset.now // NS) * NS
    arguments = {
        "tenant": dataset.tenant,
        "query": logql,
        "start": end - 3600 * NS,
        "end": end,
        "step": 300 * NS,
        "limit": 1000,
        "backward": True,
    }
    direct = await service.query_range(log_store, **arguments)  # type: ignore[arg-type]
    through_connect = await service.query_range(connect_store, **arguments)  # type: ignore[arg-type]
    assert direct.result
    assert through_connect.result == direct.result


async def test_labels_series_and_volume_through_clickhouse_connect(
    log_store: LogStore, connect_store: LogStore, dataset: Dataset
) -> None:
    window = {"tenant": dataset.tenant, "start": dataset.now - 3600 * NS, "end": dataset.now + NS}
    for store_a, store_b in ((log_store, connect_store),):
        assert await service.label_names(store_a, **window) == await service.label_names(
            store_b, **window
        )
        values_a = await service.label_values(
            store_a, name="http_status", query='{host="h1"}', **window
        )
        assert values_a == await service.label_values(
            store_b, name="http_status", query='{host="h1"}', **window
        )
        assert values_a
        series_a = await service.series(store_a, selectors=['{service="shop"}'], **window)
        series_b = await service.series(store_b, selectors=['{service="shop"}'], **window)
        assert sorted(map(str, series_a)) == sorted(map(str, series_b))
        volume = {"selector": '{service=~".+"}', "target_labels": ["level"], "limit": 10}
        assert await service.volume(store_a, **volume, **window) == await service.volume(  # type: ignore[arg-type]
            store_b,
            **volume,
            **window,  # type: ignore[arg-type]
        )
