"""The chDB store: schema, the batch formats, deduplication by batch id, the text index."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from shopkeeper.logs.ingest.syslog import frame_row
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import Batch, LogStore, records_batch
from shopkeeper.logs.store.syslog_transform import row_prefix

# An hour ago to the second: recent enough for retention, whatever day the tests run.
BASE = int(time.time()) - 3600
BASE_ISO = datetime.fromtimestamp(BASE, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _ndjson(*lines: dict[str, object]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


async def _rows(store: LogStore, tenant: str) -> list[dict[str, object]]:
    return await store.query(
        f"SELECT *, toUnixTimestamp64Nano(timestamp) AS ns FROM {store.table} "
        "WHERE tenant = {tenant:String} ORDER BY timestamp, message",
        {"tenant": tenant},
    )


async def test_json_lines_are_parsed_by_clickhouse_into_the_record_fields(
    store: LogStore, tenant: str
) -> None:
    body = _ndjson(
        {
            "@timestamp": f"{BASE_ISO}.123456789Z",
            "msg": "payment captured",
            "severity": "WARNING",
            "service": {"name": "billing"},
            "host": "web-1",
            "trace_id": "abc",
            "span_id": "def",
            "http": {"status": 502, "request": {"method": "POST"}},
            "ok": True,
            "tags": ["a", "b"],
            "nothing": None,
        },
        {"ts": BASE, "message": "seconds", "level": "ERR"},
        {"time": (BASE * 1000 + 123), "log": "millis", "level": 30},
        {"timestamp": (BASE * 10**9 + 123456789), "message": "nanos", "level": "CRITICAL"},
    )
    await store.insert(
        Batch(tenant=tenant, source="ndjson", format="json_lines", payload=body, lines=4)
    )
    rows = await _rows(store, tenant)
    by_message = {row["message"]: row for row in rows}
    first = by_message["payment captured"]
    assert first["service"] == "billing"
    assert first["host"] == "web-1"
    assert first["level"] == "warn"
    assert first["source"] == "ndjson"
    assert first["ns"] == BASE * 10**9 + 123456789
    assert (first["trace_id"], first["span_id"]) == ("abc", "def")
    assert first["attributes"] == {
        "http.status": "502",
        "http.request.method": "POST",
        "ok": "true",
        "tags": '["a","b"]',
    }
    assert by_message["seconds"]["ns"] == BASE * 10**9
    assert by_message["seconds"]["level"] == "error"
    assert by_message["millis"]["ns"] == (BASE * 1000 + 123) * 10**6
    assert by_message["millis"]["level"] == "info"
    assert by_message["nanos"]["ns"] == (BASE * 10**9 + 123456789)
    assert by_message["nanos"]["level"] == "fatal"
    assert by_message["nanos"]["service"] == "unknown_service"


async def test_unparseable_lines_are_stored_raw_with_the_reason(
    store: LogStore, tenant: str
) -> None:
    body = b'not json at all\n{"message": "bad time", "time": "yesterday-ish"}\n\n[1, 2]\n'
    await store.insert(
        Batch(tenant=tenant, source="ndjson", format="json_lines", payload=body, lines=3)
    )
    rows = await _rows(store, tenant)
    assert len(rows) == 3
    errors = {row["message"]: row["attributes"]["_parse_error"] for row in rows}
    assert errors["not json at all"] == "not a JSON object"
    assert errors["[1, 2]"] == "not a JSON object"
    assert errors["bad time"] == "unparseable timestamp: yesterday-ish"


async def test_a_batch_stored_twice_under_one_id_is_kept_once(store: LogStore, tenant: str) -> None:
    batch = Batch(
        tenant=tenant,
        source="ndjson",
        format="json_lines",
        payload=_ndjson({"message": "once", "ts": BASE}, {"message": "twice", "ts": BASE + 1}),
        lines=2,
        batch_id=f"{tenant}-1",
    )
    await store.insert(batch)
    await store.insert(batch)
    records = records_batch(
        [LogRecord(message="record")], tenant=tenant, source="loki", batch_id=f"{tenant}-2"
    )
    await store.insert(records)
    await store.insert(records)
    assert sorted(row["message"] for row in await _rows(store, tenant)) == [
        "once",
        "record",
        "twice",
    ]


async def test_records_keep_labels_and_get_the_time_of_receipt_when_they_have_none(
    store: LogStore, tenant: str
) -> None:
    record = LogRecord(
        message="hello",
        timestamp_ns=BASE * 10**9 + 1,
        service="api",
        host="h",
        level="debug",
        attributes={"job": "api", "trace": "t"},
        label_keys=["job"],
    )
    untimed = LogRecord(message="untimed")
    await store.insert(records_batch([record, untimed], tenant=tenant, source="loki"))
    rows = await _rows(store, tenant)
    stored = next(row for row in rows if row["message"] == "hello")
    assert stored["ns"] == BASE * 10**9 + 1
    assert stored["label_keys"] == ["job"]
    assert stored["attributes"] == {"job": "api", "trace": "t"}
    received = next(row for row in rows if row["message"] == "untimed")
    assert received["timestamp"] == received["observed_at"]


async def test_coalesced_batches_of_several_tenants_are_each_stored(
    store: LogStore, tenant: str
) -> None:
    other = tenant + "_other"
    batches = [
        Batch(
            tenant=name,
            source="ndjson",
            format="json_lines",
            payload=_ndjson({"message": f"{name}-{i}"}),
            lines=1,
        )
        for i in range(3)
        for name in (tenant, other)
    ]
    await store.insert_many(batches)
    assert len(await _rows(store, tenant)) == 3
    assert len(await _rows(store, other)) == 3


async def test_syslog_frames_are_parsed_by_clickhouse(store: LogStore, tenant: str) -> None:
    received = BASE * 10**9 + 5
    prefix = row_prefix("10.0.0.9", received)
    rows = (
        frame_row(
            f'<165>1 {BASE_ISO}.25Z web-1 billing 42 - [x@1 k="a\\"b"] charged'.encode(), prefix
        )
        + frame_row(b"<11>worker[7]: tab\there, newline\nthere", prefix)
        + frame_row(b"not syslog", prefix)
    )
    await store.insert(
        Batch(tenant=tenant, source="syslog", format="syslog", payload=rows, lines=3)
    )
    by_message = {row["message"]: row for row in await _rows(store, tenant)}
    assert set(by_message) == {"charged", "tab\there, newline\nthere", "not syslog"}
    charged = by_message["charged"]
    assert (charged["service"], charged["host"], charged["level"]) == ("billing", "web-1", "info")
    assert charged["ns"] == BASE * 10**9 + 250_000_000
    assert charged["attributes"] == {"facility": "local4", "pid": "42", "x@1.k": 'a"b'}
    worker = by_message["tab\there, newline\nthere"]
    assert (worker["service"], worker["host"], worker["level"]) == ("worker", "10.0.0.9", "error")
    assert worker["ns"] == received  # no timestamp: the time of receipt
    assert by_message["not syslog"]["level"] == "unknown"
    assert "_parse_error" in by_message["not syslog"]["attributes"]


async def test_a_word_search_reads_the_text_index(store: LogStore, tenant: str) -> None:
    # An empty table is planned as `ReadNothing`, without its indexes.
    line = b'{"msg": "x"}\n'
    await store.insert(
        Batch(tenant=tenant, source="ndjson", format="json_lines", payload=line, lines=1)
    )
    plan = await store.query_bytes(
        f"EXPLAIN indexes = 1 SELECT message FROM {store.table} "
        "WHERE hasToken(message, {word:String})",
        {"word": "captured"},
        fmt="TSV",
    )
    assert b"message_text" in plan


async def test_parameters_carry_any_text_and_maps_and_arrays(store: LogStore) -> None:
    tricky = "tab\there\nnew line, back\\slash \\n not an escape, quote ' and \" and {x:String}"
    rows = await store.query(
        "SELECT {s:String} AS s, {m:Map(String, String)} AS m, {a:Array(String)} AS a, "
        "{n:UInt64} AS n",
        {"s": tricky, "m": {"k'\\": tricky}, "a": [tricky, "b"], "n": 2**63},
    )
    assert rows == [{"s": tricky, "m": {"k'\\": tricky}, "a": [tricky, "b"], "n": 2**63}]


def test_large_batches_are_split_at_line_boundaries() -> None:
    from shopkeeper.logs.store.embedded import _split_lines

    payload = b"".join(b'{"n": %d}\n' % i for i in range(200_000))
    parts = _split_lines(payload, 2)
    assert len(parts) == 2
    assert b"".join(parts) == payload
    assert all(part.endswith(b"\n") for part in parts)
    assert _split_lines(b'{"small": 1}', 2) == [b'{"small": 1}']


async def test_a_large_batch_split_for_parallel_reads_is_still_kept_once(
    store: LogStore, tenant: str
) -> None:
    payload = b"".join(
        orjson.dumps({"ts": BASE + i % 3600, "message": f"line {i} " + "x" * 150}) + b"\n"
        for i in range(8_000)
    )
    batch = Batch(
        tenant=tenant,
        source="ndjson",
        format="json_lines",
        payload=payload,
        lines=8_000,
        batch_id=f"{tenant}-big",
    )
    for _ in range(3):
        await store.insert(batch)
    (row,) = await store.query(
        f"SELECT count() AS n FROM {store.table} WHERE tenant = {{tenant:String}}",
        {"tenant": tenant},
    )
    assert row["n"] == 8_000
