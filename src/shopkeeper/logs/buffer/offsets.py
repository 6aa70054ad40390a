"""Where a writer is in the stream, kept in ClickHouse beside the lines.

Before a writer inserts a group of messages it records the group's first and last stream
offsets (write-ahead). After a crash it re-reads from the recorded first offset and inserts
exactly the same group again: same batches in the same order, so the same deduplication
tokens, so ClickHouse drops what it already has. Then it carries on after the group."""

from __future__ import annotations

from dataclasses import dataclass

from shopkeeper.logs.store import LogStore

TABLE = "buffer_offsets"


@dataclass(frozen=True, slots=True)
class Group:
    first: int
    last: int


async def create_table(store: LogStore) -> None:
    await store.command(
        f"CREATE TABLE IF NOT EXISTS {store.database}.{TABLE} "
        "(stream String, first Int64, last Int64, "
        "at DateTime64(3, 'UTC') DEFAULT now64(3, 'UTC')) "
        "ENGINE = MergeTree ORDER BY (stream, first) TTL toDateTime(at) + INTERVAL 30 DAY"
    )


async def last_group(store: LogStore, stream: str) -> Group | None:
    rows = await store.query(
        f"SELECT first, last FROM {store.database}.{TABLE} "  # noqa: S608 — our identifiers
        "WHERE stream = {stream:String} ORDER BY first DESC, last DESC LIMIT 1",
        {"stream": stream},
    )
    return Group(int(rows[0]["first"]), int(rows[0]["last"])) if rows else None


async def record_group(store: LogStore, stream: str, group: Group) -> None:
    await store.command(
        f"INSERT INTO {store.database}.{TABLE} (stream, first, last) "  # noqa: S608
        "VALUES ({stream:String}, {first:Int64}, {last:Int64})",
        {"stream": stream, "first": group.first, "last": group.last},
    )
