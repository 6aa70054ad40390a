"""Syslog messages of both RFCs, as their RFCs' own examples and real senders write them.

Every message is parsed both ways a user sees it: stored (ClickHouse parses the frames) and
on the live tail (Python parses the same frames)."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from shopkeeper.core.settings import Settings
from shopkeeper.logs.ingest.syslog import decode_frames, frame_row, take_rows
from shopkeeper.logs.store import Batch, LogStore
from shopkeeper.logs.store.embedded import EmbeddedStore
from shopkeeper.logs.store.syslog_transform import row_prefix, split_row
from shopkeeper.logs.tail.decode import batch_rows

Parse = Callable[..., Awaitable[dict[str, Any]]]
"""`await parse(data, peer_host="", received_ns=now)`: the row a user reads back."""


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def _batch(rows: bytes, lines: int, tenant: str = "default") -> Batch:
    return Batch(tenant=tenant, source="syslog", format="syslog", payload=rows, lines=lines)


async def stored(store: LogStore, rows: bytes, lines: int) -> list[dict[str, Any]]:
    """The rows ClickHouse stores for `SYSLOG_STRUCTURE` rows, in the order sent."""
    tenant = f"syslog-{secrets.token_hex(4)}"
    await store.insert(_batch(rows, lines, tenant))
    return await store.query(
        "SELECT toUnixTimestamp64Nano(timestamp) AS ts, message, service, host, level, "
        f"attributes FROM {store.table} WHERE tenant = {{tenant:String}} "
        "ORDER BY timestamp, message",
        {"tenant": tenant},
    )


@pytest.fixture(scope="module")
async def parse_store(log_store: LogStore, logs_settings: Settings) -> AsyncIterator[LogStore]:
    """A table of the shared chDB engine whose retention keeps the RFCs' examples of 2003."""
    store = EmbeddedStore(logs_settings.logs_path, database="syslog_parse", retention_days=40 * 366)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["stored", "tail"])
def parse(request: pytest.FixtureRequest, parse_store: LogStore) -> Parse:
    async def parse(data: bytes, peer_host: str = "", received_ns: int = 0) -> dict[str, Any]:
        row = frame_row(data, row_prefix(peer_host, received_ns or time.time_ns()))
        if request.param == "tail":
            (decoded,) = batch_rows(_batch(row, 1))
        else:
            (decoded,) = await stored(parse_store, row, 1)
        return {key: decoded[key] for key in ("ts", "message", "service", "host", "level")} | {
            "attributes": dict(decoded["attributes"])
        }

    return parse


async def test_rfc5424_example_with_bom_and_millisecond_timestamp(parse: Parse) -> None:
    record = await parse(
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8"
    )
    assert record["message"] == "'su root' failed for lonvick on /dev/pts/8"
    assert (record["service"], record["host"], record["level"]) == (
        "su",
        "mymachine.example.com",
        "fatal",
    )
    assert record["ts"] == ns("2003-10-11T22:14:15+00:00") + 3_000_000
    assert record["attributes"] == {"facility": "auth", "msgid": "ID47"}


async def test_rfc5424_offset_and_nanoseconds_kept(parse: Parse) -> None:
    record = await parse(b"<165>1 2003-08-24T05:14:15.123456789-07:00 192.0.2.1 myproc 8710 - - hi")
    assert record["ts"] == ns("2003-08-24T12:14:15+00:00") + 123_456_789
    assert record["attributes"]["pid"] == "8710"
    assert record["level"] == "info"  # notice


async def test_rfc5424_structured_data_become_attributes(parse: Parse) -> None:
    record = await parse(
        b'<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3" '
        b'eventSource="App\\]li\\"cation" eventID="1011"][examplePriority@32473 class="high"] '
        b"An application event"
    )
    assert record["message"] == "An application event"
    assert record["attributes"]["exampleSDID@32473.eventSource"] == 'App]li"cation'
    assert record["attributes"]["exampleSDID@32473.iut"] == "3"
    assert record["attributes"]["examplePriority@32473.class"] == "high"


async def test_rfc5424_nil_fields_take_the_receivers_view(parse: Parse) -> None:
    received = ns("2026-12-04T12:00:00+00:00") + 123
    record = await parse(b"<15>1 - - - - - - no header", peer_host="10.1.1.1", received_ns=received)
    assert (record["ts"], record["host"], record["service"]) == (
        received,
        "10.1.1.1",
        "unknown_service",
    )
    assert record["level"] == "debug"


async def test_rfc3164_example(parse: Parse) -> None:
    received = ns("2026-10-12T00:00:00+00:00")
    record = await parse(
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick", received_ns=received
    )
    assert (record["service"], record["host"], record["level"]) == ("su", "mymachine", "fatal")
    assert record["ts"] == ns("2026-10-11T22:14:15+00:00")
    assert record["message"] == "'su root' failed for lonvick"


async def test_rfc3164_december_line_received_in_january_is_last_year(parse: Parse) -> None:
    record = await parse(
        b"<13>Dec 31 23:59:59 h app: x", received_ns=ns("2027-01-01T00:00:02+00:00")
    )
    assert record["ts"] == ns("2026-12-31T23:59:59+00:00")


async def test_rfc3164_tag_without_pid_is_the_service(parse: Parse) -> None:
    record = await parse(b"<30>Jan  5 01:02:03 web-1 nginx[4242]: GET / 200")
    assert (record["service"], record["host"], record["message"]) == ("nginx", "web-1", "GET / 200")
    assert record["attributes"] == {"facility": "daemon", "pid": "4242"}


async def test_python_sysloghandler_format_without_timestamp_or_host(parse: Parse) -> None:
    before = time.time_ns()
    record = await parse(b"<11>billing[77]: card declined\x00", peer_host="127.0.0.1")
    assert (record["service"], record["host"], record["level"]) == ("billing", "127.0.0.1", "error")
    assert record["message"] == "card declined"
    assert before <= record["ts"] <= time.time_ns()  # the time of receipt


async def test_rfc3164_with_rfc3339_timestamp_as_rsyslog_may_send(parse: Parse) -> None:
    record = await parse(b"<12>2026-12-04T11:00:00.250+01:00 box cron[1]: ran")
    assert record["ts"] == ns("2026-12-04T10:00:00+00:00") + 250_000_000
    assert (record["host"], record["service"], record["level"]) == ("box", "cron", "warn")


@pytest.mark.parametrize(
    ("severity", "level"),
    [(0, "fatal"), (1, "fatal"), (2, "fatal"), (3, "error"), (4, "warn"), (5, "info"),
     (6, "info"), (7, "debug")],
)  # fmt: skip
async def test_every_severity_maps_to_its_level(parse: Parse, severity: int, level: str) -> None:
    assert (await parse(f"<{8 + severity}>app: x".encode()))["level"] == level


async def test_unparseable_line_is_kept_with_the_reason(parse: Parse) -> None:
    record = await parse(b"just text\n", peer_host="h")
    assert record["message"] == "just text"
    assert record["level"] == "unknown"
    assert "_parse_error" in record["attributes"]


def test_tcp_framing_newline_nul_and_octet_counting_mixed() -> None:
    frame = b"<14>1 - h app - - - octet framed\n"
    buffer = bytearray(
        b"<14>app: lf\n<14>app: nul\x00" + str(len(frame)).encode() + b" " + frame + b"<14>app: par"
    )
    assert list(decode_frames(buffer)) == [
        b"<14>app: lf",
        b"<14>app: nul",
        b"<14>1 - h app - - - octet framed",
    ]
    assert buffer == bytearray(b"<14>app: par")
    buffer += b"tial\r\n"
    assert list(decode_frames(buffer)) == [b"<14>app: partial"]
    assert buffer == bytearray()


def test_octet_counted_frame_split_across_reads_waits_for_the_rest() -> None:
    buffer = bytearray(b"21 <14>1 - h app - -")
    assert list(decode_frames(buffer)) == []
    buffer += b" - x"
    assert list(decode_frames(buffer)) == [b"<14>1 - h app - - - x"]


async def test_when_received_is_now_for_utc_today(parse: Parse) -> None:
    stamp = datetime.now(UTC).strftime("%b %d %H:%M:%S").encode()
    record = await parse(b"<14>" + stamp + b" h a: x")
    assert abs(record["ts"] - time.time_ns()) < 2_000_000_000


async def test_tag_with_pid_needs_no_colon_as_rsyslog_forwards_rfc5424_input(parse: Parse) -> None:
    record = await parse(b"<128>2026-12-04T11:50:00.123456Z web-7 checkout[4242] order 0")
    assert (record["host"], record["service"], record["message"]) == (
        "web-7",
        "checkout",
        "order 0",
    )
    assert record["attributes"]["pid"] == "4242"


async def test_tabs_backslashes_and_newlines_of_a_message_are_kept(parse: Parse) -> None:
    record = await parse(b"<14>app: a\tb \\n c\\\nsecond line")
    assert record["message"] == "a\tb \\n c\\\nsecond line"


LINES = [
    b'<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [a@1 k="v"] \xef\xbb\xbfmsg',
    b"<34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed",
    b"<12>2026-12-04T11:00:00.250+01:00 box cron[1]: ran",
    b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
    b"<11>billing[77]: card declined",
    b"no syslog at all",
    b"<200>Feb  5 17:32:18 h a: priority too high for RFC 3164",
    b"<999>1 - - - - - - any priority for RFC 5424",
    b"<14>Oct 11 22:14:15 tag: no host",
    b"<14>Oct 11 22:14:15 host",
    b"<14>Oct 11 22:14:15 host  two spaces",
    b"<14>Feb 30 22:14:15 h t: no such day",
    b"<14>Oct 11 25:14:15 h t: no such hour",
    b"<14>1 2003-10-11T22:14:15 h a p m - no zone",
    b"<14>1 bogus h a p m - not a timestamp",
    b"<14>1 ts h a p m -no space after the structured data",
    b"<14>app[]: empty pid",
    b"<14>app[-]: dash pid",
    b"<14>" + b"t" * 65 + b": a tag too long",
    b"<14>Oct 11 22:14:15 h " + b"t" * 64 + b"[1]: the longest tag",
    b"<14>",
    b"<abc> not a priority",
    b"  <14>lead: spaces\r",
]


async def test_stored_rows_are_the_tails_rows(parse_store: LogStore) -> None:
    """ClickHouse's parse and Python's agree, edge cases included."""
    received = ns("2027-01-01T00:30:00+00:00")
    rows = b"".join(frame_row(line, row_prefix("10.0.0.1", received)) for line in LINES)
    tail = batch_rows(_batch(rows, len(LINES)))
    keys = ("ts", "message", "service", "host", "level", "attributes")
    expected = sorted(tuple(str(row[key]) for key in keys) for row in tail)
    got = await stored(parse_store, rows, len(LINES))
    assert sorted(tuple(str(row[key]) for key in keys) for row in got) == expected
    assert len(got) == len(LINES)


def _rows_read(buffer: bytearray, prefix: bytes, size: int) -> tuple[bytes, int]:
    """`take_rows` over `buffer` arriving `size` bytes at a time."""
    stream, buffer = bytes(buffer), bytearray()
    rows, lines = b"", 0
    for start in range(0, len(stream), size):
        buffer += stream[start : start + size]
        taken, count = take_rows(buffer, prefix)
        rows, lines = rows + taken, lines + count
    assert buffer == bytearray()
    return rows, lines


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_rows_are_the_frames_however_the_stream_is_cut(size: int) -> None:
    prefix = row_prefix("10.0.0.1", 5)
    octets = b"<14>1 - h app - - - octet\nframed\tline"
    stream = (
        b"<14>app: one\r\n<14>app: two\\ \t tab\n<14>app: nul\x00"
        + str(len(octets)).encode()
        + b" "
        + octets
        + b"\n\n<14>app: after a blank line\n<14>app: last\n"
    )
    rows, lines = _rows_read(bytearray(stream), prefix, size)
    assert [split_row(row)[2].rstrip(b"\r") for row in rows.splitlines()] == [
        b"<14>app: one",
        b"<14>app: two\\ \t tab",
        b"<14>app: nul",
        octets,
        b"<14>app: after a blank line",
        b"<14>app: last",
    ]
    assert lines == 6
    assert {split_row(row)[:2] for row in rows.splitlines()} == {("10.0.0.1", 5)}
