"""What the tail decodes from a batch in Python is what ClickHouse stores from it: the same
NDJSON batch is stored and decoded, and every line's columns agree."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from shopkeeper.logs.query.compiler import ROW_COLUMNS
from shopkeeper.logs.query.pipeline import entry_from_row
from shopkeeper.logs.store import Batch, LogStore
from shopkeeper.logs.tail.decode import batch_rows

NOW = int(time.time()) - 60  # within retention, whatever today is
DOCUMENTS: list[object] = [
    {
        "ts": datetime.fromtimestamp(NOW, UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z"),
        "message": "rfc 3339",
        "level": "WARNING",
    },
    {"@timestamp": NOW, "msg": "epoch seconds", "severity": "err", "service.name": "api"},
    {"time": NOW * 1000 + 123, "log": "epoch ms", "level": 30, "host": {"name": "web-1"}},
    {"timestamp": NOW + 0.5, "message": "float seconds", "trace.id": "abc", "span_id": "def"},
    {"timestamp": NOW * 10**9 + 123456789, "message": "ns", "http": {"status": 504, "ok": False}},
    {"ts": "yesterday", "message": "bad time", "service": "x"},
    {"message": "nested", "a": {"b": {"c": {"d": 1}}}, "list": [1, "two"], "nothing": None},
    {"message": "both names", "msg": "second", "level": "  Info "},
    {"message": ""},
    "not an object",
]


async def test_python_decoding_agrees_with_what_clickhouse_stores(
    log_store: LogStore, tenant: str
) -> None:
    payload = b"".join(
        orjson.dumps(d) + b"\n" if not isinstance(d, str) else d.encode() + b"\n" for d in DOCUMENTS
    )
    batch = Batch(
        tenant=tenant,
        source="elasticsearch",
        format="json_lines",
        payload=payload,
        lines=len(DOCUMENTS),
        extra_attributes={"index": "shop-logs"},
    )
    await log_store.insert(batch)
    stored = await log_store.query(
        f"SELECT {ROW_COLUMNS}, toUnixTimestamp64Nano(observed_at) AS observed "
        f"FROM {log_store.table} WHERE tenant = {{tenant:String}} ORDER BY message",
        {"tenant": tenant},
    )
    decoded = sorted(batch_rows(batch), key=lambda row: row["message"])
    assert len(stored) == len(decoded) == len(DOCUMENTS)
    compared_times = 0
    for row, mine in zip(stored, decoded, strict=True):
        if row["ts"] == row["observed"]:  # no usable timestamp: both take the time of receipt
            mine["ts"] = row["ts"]
        else:
            compared_times += 1
        ours, theirs = entry_from_row(mine), entry_from_row(row)
        assert (ours.ts, ours.line, ours.stream, ours.metadata) == (
            theirs.ts,
            theirs.line,
            theirs.stream,
            theirs.metadata,
        ), row["message"]
    assert compared_times == 5
