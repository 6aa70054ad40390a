"""The group-commit writer: coalescing, back-pressure, failures reported to every waiter."""

from __future__ import annotations

import asyncio

import httpx
import orjson
import pytest
from fastapi import FastAPI

from shopkeeper.logs.ingest.errors import IngestOverloaded, StorageUnavailable
from shopkeeper.logs.ingest.writer import GroupCommitWriter
from shopkeeper.logs.store import Batch, LogStore
from shopkeeper.logs.store.embedded import EmbeddedStore
from tests.logs.conftest import stored_rows


def _batch(tenant: str, *messages: str) -> Batch:
    payload = b"".join(orjson.dumps({"message": m}) + b"\n" for m in messages)
    return Batch(
        tenant=tenant, source="ndjson", format="json_lines", payload=payload, lines=len(messages)
    )


class CountingStore:
    """The real store, counting the INSERTs it is asked for (wraps, does not replace)."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self.inserts: list[int] = []
        self.gate: asyncio.Event | None = None

    async def insert_many(self, batches: list[Batch]) -> None:
        self.inserts.append(sum(batch.lines for batch in batches))
        if self.gate is not None:
            await self.gate.wait()
        await self.store.insert_many(batches)

    def stage(self, batches: list[Batch]) -> None:
        self.store.stage(batches)


async def test_concurrent_requests_share_an_insert(log_store: LogStore, tenant: str) -> None:
    counting = CountingStore(log_store)
    writer = GroupCommitWriter(counting, max_pending_lines=10_000, batch_lines=1_000)  # type: ignore[arg-type]
    await writer.start()
    counting.gate = asyncio.Event()
    first = asyncio.create_task(writer.write([_batch(tenant, "first")]))
    await asyncio.sleep(0.05)  # the first INSERT is running (held at the gate)
    rest = [asyncio.create_task(writer.write([_batch(tenant, f"m{i}")])) for i in range(20)]
    await asyncio.sleep(0.05)
    counting.gate.set()
    await asyncio.gather(first, *rest)
    await writer.stop()
    assert counting.inserts == [1, 20]
    assert len(await stored_rows(log_store, tenant)) == 21


async def test_clients_answered_together_share_their_next_insert_too(
    log_store: LogStore, tenant: str
) -> None:
    # Four clients, each sending again as soon as it is answered, a few ms apart. The first
    # to come back must not go alone (rounds of 1 and 3 requests, twice the INSERTs): the
    # round waits for as many requests as were in flight when the last one ended.
    counting = CountingStore(log_store)
    writer = GroupCommitWriter(counting, max_pending_lines=1_000_000, batch_lines=100_000)  # type: ignore[arg-type]
    await writer.start()
    lines = [f"line {i}" for i in range(10_000)]  # at least SMALL_ROUND_LINES: not held by it

    async def client(n: int) -> None:
        for _ in range(3):
            await writer.write([_batch(tenant, *lines)])
            await asyncio.sleep(0.005 * n)

    await asyncio.gather(*(client(n) for n in range(4)))
    await writer.stop()
    assert counting.inserts == [40_000, 40_000, 40_000]


async def test_with_two_rounds_a_held_insert_does_not_hold_the_next(
    log_store: LogStore, tenant: str
) -> None:
    class HoldingFirst(CountingStore):
        async def insert_many(self, batches: list[Batch]) -> None:
            self.inserts.append(sum(batch.lines for batch in batches))
            if len(self.inserts) == 1 and self.gate is not None:
                await self.gate.wait()
            await self.store.insert_many(batches)

    holding = HoldingFirst(log_store)
    holding.gate = asyncio.Event()
    writer = GroupCommitWriter(
        holding,  # type: ignore[arg-type]
        max_pending_lines=10_000,
        batch_lines=1_000,
        concurrent_rounds=2,
    )
    await writer.start()
    first = asyncio.create_task(writer.write([_batch(tenant, "held")]))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(writer.write([_batch(tenant, "passing")]), timeout=30)
    assert [row["message"] for row in await stored_rows(log_store, tenant)] == ["passing"]
    assert not first.done()
    holding.gate.set()
    await first
    await writer.stop()
    assert sorted(row["message"] for row in await stored_rows(log_store, tenant)) == [
        "held",
        "passing",
    ]


async def test_a_full_writer_refuses_with_retry_after_and_stores_none_of_it(
    log_store: LogStore, tenant: str
) -> None:
    counting = CountingStore(log_store)
    writer = GroupCommitWriter(counting, max_pending_lines=5, batch_lines=1_000)  # type: ignore[arg-type]
    await writer.start()
    counting.gate = asyncio.Event()
    held = asyncio.create_task(writer.write([_batch(tenant, "a", "b", "c")]))
    await asyncio.sleep(0.05)
    with pytest.raises(IngestOverloaded) as refused:
        await writer.write([_batch(tenant, "d", "e", "f")])
    assert refused.value.headers["Retry-After"] == "1"
    counting.gate.set()
    await held
    await writer.stop()
    assert sorted(row["message"] for row in await stored_rows(log_store, tenant)) == ["a", "b", "c"]


async def test_storage_failures_reach_every_waiting_request(log_store: LogStore) -> None:
    class Down:
        async def insert_many(self, batches: list[Batch]) -> None:
            from shopkeeper.logs.store import StoreUnavailable

            raise StoreUnavailable("disk full")

        def stage(self, batches: list[Batch]) -> None:
            """Nothing to prepare: nothing will be stored."""

    writer = GroupCommitWriter(Down(), max_pending_lines=100, batch_lines=100)  # type: ignore[arg-type]
    await writer.start()
    results = await asyncio.gather(
        *(writer.write([_batch("x", "m")]) for _ in range(3)), return_exceptions=True
    )
    await writer.stop()
    assert all(isinstance(result, StorageUnavailable) for result in results)
    assert writer.pending_lines == 0


def _problem(r: httpx.Response) -> bool:
    return bool(r.json()["type"].endswith("rate-limited"))


def _plain(r: httpx.Response) -> bool:
    return r.headers["content-type"].startswith("text/plain")


def _es(r: httpx.Response) -> bool:
    return bool(r.json()["error"]["type"] == "es_rejected_execution_exception")


def _rpc(r: httpx.Response) -> bool:
    return bool(r.json()["code"] == 8)


@pytest.mark.parametrize(
    ("path", "content_type", "check"),
    [
        ("/api/v1/logs/ingest", "application/x-ndjson", _problem),
        ("/api/v1/logs/loki/api/v1/push", "application/json", _plain),
        ("/api/v1/logs/es/_bulk", "application/x-ndjson", _es),
        ("/api/v1/logs/otlp/v1/logs", "application/json", _rpc),
    ],
)
async def test_429_is_answered_in_each_protocols_format(
    logs_app: FastAPI, ingest_client: httpx.AsyncClient, path: str, content_type: str, check: object
) -> None:
    bodies = {
        "/api/v1/logs/ingest": b'{"message": "x"}\n',
        "/api/v1/logs/loki/api/v1/push": orjson.dumps(
            {"streams": [{"stream": {"a": "b"}, "values": [["1", "x"]]}]}
        ),
        "/api/v1/logs/es/_bulk": b'{"index": {"_index": "i"}}\n{"message": "x"}\n',
        "/api/v1/logs/otlp/v1/logs": orjson.dumps(
            {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": {"stringValue": "x"}}]}]}]}
        ),
    }
    # A real writer with one line already waiting on a held INSERT, bound to one line.
    counting = CountingStore(logs_app.state.logs.store)
    counting.gate = asyncio.Event()
    full = GroupCommitWriter(counting, max_pending_lines=1, batch_lines=100)  # type: ignore[arg-type]
    await full.start()
    held = asyncio.create_task(full.write([_batch("held", "waiting")]))
    await asyncio.sleep(0.05)
    sink, logs_app.state.logs.sink = logs_app.state.logs.sink, full
    try:
        response = await ingest_client.post(
            path, content=bodies[path], headers={"Content-Type": content_type}
        )
    finally:
        logs_app.state.logs.sink = sink
        counting.gate.set()
        await held
        await full.stop()
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert check(response)  # type: ignore[operator]


async def test_a_stream_of_small_pushes_becomes_fewer_inserts(
    log_store: LogStore, tenant: str
) -> None:
    counting = CountingStore(log_store)
    writer = GroupCommitWriter(counting, max_pending_lines=10_000, batch_lines=1_000)  # type: ignore[arg-type]
    await writer.start()

    async def push(i: int) -> None:
        await asyncio.sleep(i * 0.02)
        await writer.write([_batch(tenant, f"small {i}")])

    await asyncio.gather(*(push(i) for i in range(10)))
    await writer.stop()
    assert len(await stored_rows(log_store, tenant)) == 10
    assert len(counting.inserts) < 10  # rounds of small pushes are held to 5 a second


async def test_stopping_stores_what_waits_and_refuses_new_writes(
    log_store: LogStore, tenant: str
) -> None:
    counting = CountingStore(log_store)
    writer = GroupCommitWriter(counting, max_pending_lines=100, batch_lines=100)  # type: ignore[arg-type]
    await writer.start()
    counting.gate = asyncio.Event()
    waiting = [asyncio.create_task(writer.write([_batch(tenant, f"w{i}")])) for i in range(3)]
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(writer.stop())
    await asyncio.sleep(0.05)
    with pytest.raises(StorageUnavailable):
        await writer.write([_batch(tenant, "late")])
    counting.gate.set()
    await stopping
    await asyncio.gather(*waiting)
    assert sorted(row["message"] for row in await stored_rows(log_store, tenant)) == [
        "w0",
        "w1",
        "w2",
    ]


async def test_large_bodies_written_ahead_of_their_round_are_stored_once_each(
    log_store: LogStore, tenant: str
) -> None:
    """Bodies over 512 KiB are written to files while they wait for their round (`stage`);
    every line of every body is stored once, and no file is left behind."""
    counting = CountingStore(log_store)
    writer = GroupCommitWriter(counting, max_pending_lines=100_000, batch_lines=50_000)  # type: ignore[arg-type]
    await writer.start()
    counting.gate = asyncio.Event()
    held = asyncio.create_task(writer.write([_batch(tenant, "first")]))
    await asyncio.sleep(0.05)  # the first INSERT is running (held): the large bodies queue
    bodies = [
        _batch(tenant, *(f"body {b} line {n} " + "x" * 150 for n in range(4_000))) for b in range(3)
    ]
    assert all(len(batch.payload) > 512 * 1024 for batch in bodies)
    waiting = [asyncio.create_task(writer.write([batch])) for batch in bodies]
    await asyncio.sleep(0.1)
    counting.gate.set()
    await asyncio.gather(held, *waiting)
    await writer.stop()
    assert counting.inserts == [1, 12_000]
    messages = [str(row["message"]) for row in await stored_rows(log_store, tenant)]
    assert len(messages) == 12_001
    assert len(set(messages)) == 12_001
    if isinstance(log_store, EmbeddedStore):
        assert list((log_store.path / "incoming").iterdir()) == []
