"""Syslog messages of both RFCs, as their RFCs' own examples and real senders write them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from shopkeeper.logs.ingest.syslog import decode_frames, encode_message, parse_message
from shopkeeper.logs.store.base import encode_records


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000_000


def test_rfc5424_example_with_bom_and_millisecond_timestamp() -> None:
    record = parse_message(
        b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - "
        b"\xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8"
    )
    assert record.message == "'su root' failed for lonvick on /dev/pts/8"
    assert (record.service, record.host, record.level) == ("su", "mymachine.example.com", "fatal")
    assert record.timestamp_ns == ns("2003-10-11T22:14:15+00:00") + 3_000_000
    assert record.attributes == {"facility": "auth", "msgid": "ID47"}


def test_rfc5424_offset_and_nanoseconds_kept() -> None:
    record = parse_message(
        b"<165>1 2003-08-24T05:14:15.123456789-07:00 192.0.2.1 myproc 8710 - - hi"
    )
    assert record.timestamp_ns == ns("2003-08-24T12:14:15+00:00") + 123_456_789
    assert record.attributes["pid"] == "8710"
    assert record.level == "info"  # notice


def test_rfc5424_structured_data_become_attributes() -> None:
    record = parse_message(
        b'<165>1 2003-10-11T22:14:15.003Z host evntslog - ID47 [exampleSDID@32473 iut="3" '
        b'eventSource="App\\]li\\"cation" eventID="1011"][examplePriority@32473 class="high"] '
        b"An application event"
    )
    assert record.message == "An application event"
    assert record.attributes["exampleSDID@32473.eventSource"] == 'App]li"cation'
    assert record.attributes["exampleSDID@32473.iut"] == "3"
    assert record.attributes["examplePriority@32473.class"] == "high"


def test_rfc5424_nil_fields_take_the_receivers_view() -> None:
    record = parse_message(b"<15>1 - - - - - - no header", peer_host="10.1.1.1")
    assert (record.timestamp_ns, record.host, record.service) == (0, "10.1.1.1", "unknown_service")
    assert record.level == "debug"


def test_rfc3164_example() -> None:
    received = ns("2026-10-12T00:00:00+00:00")
    record = parse_message(
        b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick", received_ns=received
    )
    assert (record.service, record.host, record.level) == ("su", "mymachine", "fatal")
    assert record.timestamp_ns == ns("2026-10-11T22:14:15+00:00")
    assert record.message == "'su root' failed for lonvick"


def test_rfc3164_december_line_received_in_january_is_last_year() -> None:
    record = parse_message(
        b"<13>Dec 31 23:59:59 h app: x", received_ns=ns("2027-01-01T00:00:02+00:00")
    )
    assert record.timestamp_ns == ns("2026-12-31T23:59:59+00:00")


def test_rfc3164_tag_without_pid_is_the_service() -> None:
    record = parse_message(b"<30>Jan  5 01:02:03 web-1 nginx[4242]: GET / 200")
    assert (record.service, record.host, record.message) == ("nginx", "web-1", "GET / 200")
    assert record.attributes == {"facility": "daemon", "pid": "4242"}


def test_python_sysloghandler_format_without_timestamp_or_host() -> None:
    before = time.time_ns()
    record = parse_message(b"<11>billing[77]: card declined\x00", peer_host="127.0.0.1")
    assert (record.service, record.host, record.level) == ("billing", "127.0.0.1", "error")
    assert record.message == "card declined"
    assert record.timestamp_ns == 0 or record.timestamp_ns >= before


def test_rfc3164_with_rfc3339_timestamp_as_rsyslog_may_send() -> None:
    record = parse_message(b"<12>2026-12-04T11:00:00.250+01:00 box cron[1]: ran")
    assert record.timestamp_ns == ns("2026-12-04T10:00:00+00:00") + 250_000_000
    assert (record.host, record.service, record.level) == ("box", "cron", "warn")


@pytest.mark.parametrize(
    ("severity", "level"),
    [(0, "fatal"), (1, "fatal"), (2, "fatal"), (3, "error"), (4, "warn"), (5, "info"),
     (6, "info"), (7, "debug")],
)  # fmt: skip
def test_every_severity_maps_to_its_level(severity: int, level: str) -> None:
    assert parse_message(f"<{8 + severity}>app: x".encode()).level == level


def test_unparseable_line_is_kept_with_the_reason() -> None:
    record = parse_message(b"just text\n", peer_host="h")
    assert record.message == "just text"
    assert record.level == "unknown"
    assert "_parse_error" in record.attributes


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
    assert [parse_message(frame).message for frame in decode_frames(buffer)] == ["x"]


def test_when_received_is_now_for_utc_today() -> None:
    stamp = datetime.now(UTC).strftime("%b %d %H:%M:%S").encode()
    record = parse_message(b"<14>" + stamp + b" h a: x")
    assert abs(record.timestamp_ns - time.time_ns()) < 2_000_000_000


def test_tag_with_pid_needs_no_colon_as_rsyslog_forwards_rfc5424_input() -> None:
    record = parse_message(b"<128>2026-12-04T11:50:00.123456Z web-7 checkout[4242] order 0")
    assert (record.host, record.service, record.message) == ("web-7", "checkout", "order 0")
    assert record.attributes["pid"] == "4242"


@pytest.mark.parametrize(
    "line",
    [
        b'<34>1 2003-10-11T22:14:15.003Z mymachine su - ID47 [a@1 k="v"] \xef\xbb\xbfmsg',
        b"<34>Oct 11 22:14:15 mymachine su[12]: 'su root' failed",
        b"<12>2026-12-04T11:00:00.250+01:00 box cron[1]: ran",
        b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        b"<11>billing[77]: card declined",
        b"no syslog at all",
    ],
)
def test_the_receivers_rows_are_the_records_rows(line: bytes) -> None:
    received = ns("2026-12-04T12:00:00+00:00")
    assert encode_message(line, "10.0.0.1", received) == encode_records(
        [parse_message(line, "10.0.0.1", received)]
    )
