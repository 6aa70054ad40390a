"""Syslog over TCP: framing (RFC 6587) into the rows ClickHouse parses; and the same parse in
Python (RFC 5424 and RFC 3164), which the live tail uses.

The receiver does not parse: it cuts a stream into frames and hands them on as rows of
`store.syslog_transform.SYSLOG_STRUCTURE`, whose SQL parses them by the rules of `parse_fields`
below. What a sender leaves out (BSD senders without timestamp or hostname, as Python's
`SysLogHandler` writes them) takes the receiver's view: the time of receipt and the peer's
address."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from shopkeeper.logs.records import UNKNOWN_SERVICE, LogRecord, syslog_severity_level
from shopkeeper.logs.store.syslog_transform import (
    FACILITIES,
    FRAME_LEADING,
    FRAME_TRAILING,
    NOT_SYSLOG,
    escape_frame,
)

NIL: Final = b"-"
BOM: Final = b"\xef\xbb\xbf"

# RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]
_RFC5424 = re.compile(
    rb"<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) "
    rb'(-|(?:\[(?:[^\]"\\]|\\.|"(?:[^"\\]|\\.)*")*\])+)(?: (.*))?',
    re.DOTALL,
)
_SD_ELEMENT = re.compile(rb'\[([^\s\]]+)((?:\s+[^\s=\]]+="(?:[^"\\]|\\.)*")*)\s*\]')
_SD_PARAM = re.compile(rb'([^\s=\]]+)="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(rb'\\([\\"\]])')

# RFC 3164: <PRI>[TIMESTAMP HOSTNAME ]TAG[pid]: MSG. The timestamp is BSD's `Mmm dd hh:mm:ss`
# or, as rsyslog and others also send, RFC 3339.
_RFC3164_HEAD = re.compile(
    rb"<(\d{1,3})>"
    rb"(?:([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*))?"
    rb" ?"
)
_HOSTNAME = re.compile(rb"([^\s:\[\]]+) (?=\S)")
# A TAG ends with `:` or `[pid]` (rsyslog forwarding RFC 5424 input writes `app[pid]` bare).
_TAG = re.compile(rb"([^\s:\[\]]{1,64})(?:\[([^\]\s]*)\]:?|:) ?")
_RFC3164_COMMON = re.compile(
    rb"<(\d{1,3})>"
    rb"(?:([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S*)) "
    rb"([^\s:\[\]]+) ([^\s:\[\]]{1,64})(?:\[([^\]\s]*)\]:?|:) ?(.*)",
    re.DOTALL,
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
         b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"),
        start=1,
    )
}  # fmt: skip


def decode_frames(buffer: bytearray) -> Iterator[bytes]:
    """Take the complete messages off the front of a TCP stream buffer (RFC 6587): octet
    counting (`LEN SP MSG`) when a frame starts with a digit, else up to a newline or NUL.
    The incomplete rest stays in `buffer`."""
    start = 0
    end = len(buffer)
    while start < end:
        first = buffer[start]
        if first in b"\n\r\x00 ":
            start += 1
            continue
        if 0x30 <= first <= 0x39:
            space = buffer.find(b" ", start, min(end, start + 12))
            if space < 0:
                if end - start >= 12:  # not a length after all: treat as a delimited line
                    stop = _delimiter(buffer, start, end)
                    if stop < 0:
                        break
                    yield bytes(buffer[start:stop])
                    start = stop + 1
                    continue
                break
            length_text = bytes(buffer[start:space])
            if not length_text.isdigit():
                stop = _delimiter(buffer, start, end)
                if stop < 0:
                    break
                yield bytes(buffer[start:stop])
                start = stop + 1
                continue
            frame_end = space + 1 + int(length_text)
            if frame_end > end:
                break
            yield bytes(buffer[space + 1 : frame_end]).rstrip(b"\r\n\x00")
            start = frame_end
            continue
        stop = _delimiter(buffer, start, end)
        if stop < 0:
            break
        yield bytes(buffer[start:stop]).rstrip(b"\r")
        start = stop + 1
    del buffer[:start]


def _delimiter(buffer: bytearray, start: int, end: int) -> int:
    newline = buffer.find(b"\n", start, end)
    nul = buffer.find(b"\x00", start, newline if newline >= 0 else end)
    return nul if nul >= 0 else newline


def take_rows(buffer: bytearray, prefix: bytes) -> tuple[bytes, int]:
    """The complete frames at the front of a TCP stream buffer as rows (`prefix` + the frame,
    escaped) and their number; the incomplete rest stays in `buffer`.

    Newline (or NUL) framing, where every frame starts with `<`, is cut with a few C-speed
    passes over the whole buffer; anything else (octet counting, stray text between frames)
    frame by frame."""
    if buffer[:1] == b"<":
        end = max(buffer.rfind(b"\n"), buffer.rfind(b"\x00"))
        if end < 0:
            return b"", 0
        region = bytes(buffer[: end + 1])
        if b"\x00" in region:  # a NUL ends a frame as a newline does
            region = region.replace(b"\x00", b"\n")
        lines = region.count(b"\n")
        # Every frame starts with `<`: none is octet-counted, and none is empty.
        if region.count(b"\n<") == lines - 1:
            del buffer[: end + 1]
            region = escape_frame(region, newlines=False)  # its newlines end rows here
            return prefix + region[:-1].replace(b"\n", b"\n" + prefix) + b"\n", lines
    frames = list(decode_frames(buffer))
    return b"".join(frame_row(frame, prefix) for frame in frames), len(frames)


def frame_row(frame: bytes, prefix: bytes) -> bytes:
    """One frame (a datagram, an octet-counted frame) as a row."""
    return prefix + escape_frame(frame) + b"\n"


Fields = tuple[int, str, str, str, str, dict[str, str]]
"""(timestamp ns or 0, service, host, level, message, attributes) of one message."""

_LEVELS: Final = tuple(syslog_severity_level(severity) for severity in range(8))


def parse_message(data: bytes, peer_host: str = "", received_ns: int = 0) -> LogRecord:
    """One syslog message (either RFC) as a record; a line matching neither is kept whole, as
    `unknown` from the peer, with `_parse_error` saying so."""
    timestamp_ns, service, host, level, message, attributes = parse_fields(
        data, peer_host, received_ns
    )
    return LogRecord(
        message=message,
        timestamp_ns=timestamp_ns,
        service=service,
        host=host,
        level=level,
        attributes=attributes,
    )


def parse_fields(data: bytes, peer_host: str = "", received_ns: int = 0) -> Fields:
    data = data.lstrip(FRAME_LEADING).rstrip(FRAME_TRAILING)
    if data.startswith(b"<"):
        match = _RFC5424.match(data)
        if match is not None:
            return _rfc5424(match, peer_host)
        common = _RFC3164_COMMON.match(data)
        if common is not None and int(common[1]) < 192:
            return _rfc3164_common(common, received_ns or time.time_ns())
        head = _RFC3164_HEAD.match(data)
        if head is not None and int(head[1]) < 192:
            return _rfc3164(data, head, peer_host, received_ns or time.time_ns())
    return (
        0,
        UNKNOWN_SERVICE,
        peer_host,
        "unknown",
        data.decode("utf-8", "replace"),
        {"_parse_error": NOT_SYSLOG},
    )


def _priority(pri: bytes, attributes: dict[str, str]) -> str:
    value = int(pri)
    facility = value >> 3
    if facility < len(FACILITIES):
        attributes["facility"] = FACILITIES[facility]
    return _LEVELS[value & 7]


def _rfc5424(match: re.Match[bytes], peer_host: str) -> Fields:
    pri, stamp, hostname, app_name, procid, msgid, sd, msg = match.groups()
    attributes: dict[str, str] = {}
    level = _priority(pri, attributes)
    if procid != NIL:
        attributes["pid"] = procid.decode("utf-8", "replace")
    if msgid != NIL:
        attributes["msgid"] = msgid.decode("utf-8", "replace")
    if sd != NIL:
        for element in _SD_ELEMENT.finditer(sd):
            prefix = element[1].decode("utf-8", "replace")
            for param in _SD_PARAM.finditer(element[2]):
                name = param[1].decode("utf-8", "replace")
                raw = param[2]
                if b"\\" in raw:
                    raw = _SD_UNESCAPE.sub(rb"\1", raw)
                attributes[f"{prefix}.{name}"] = raw.decode("utf-8", "replace")
    message = msg or b""
    if message.startswith(BOM):
        message = message[3:]
    return (
        0 if stamp == NIL else rfc3339_ns(stamp),
        UNKNOWN_SERVICE if app_name == NIL else app_name.decode("utf-8", "replace"),
        peer_host if hostname == NIL else hostname.decode("utf-8", "replace"),
        level,
        message.decode("utf-8", "replace"),
        attributes,
    )


def _rfc3164_common(match: re.Match[bytes], received_ns: int) -> Fields:
    """The usual BSD line, `<PRI>TIMESTAMP HOST TAG[pid]: MSG`, in one match."""
    pri, bsd_stamp, iso_stamp, host, tag, pid, msg = match.groups()
    attributes: dict[str, str] = {}
    level = _priority(pri, attributes)
    if pid:
        attributes["pid"] = pid.decode("utf-8", "replace")
    return (
        bsd_ns(bsd_stamp, received_ns) if bsd_stamp else rfc3339_ns(iso_stamp),
        tag.decode("utf-8", "replace"),
        host.decode("utf-8", "replace"),
        level,
        msg.decode("utf-8", "replace"),
        attributes,
    )


def _rfc3164(data: bytes, head: re.Match[bytes], peer_host: str, received_ns: int) -> Fields:
    attributes: dict[str, str] = {}
    level = _priority(head[1], attributes)
    position = head.end()
    host = peer_host
    timestamp_ns = 0
    if head[2] is not None or head[3] is not None:
        timestamp_ns = bsd_ns(head[2], received_ns) if head[2] else rfc3339_ns(head[3])
        # After a timestamp comes the hostname, unless the sender went straight to the tag.
        hostname = _HOSTNAME.match(data, position)
        if hostname is not None and _TAG.match(data, position) is None:
            host = hostname[1].decode("utf-8", "replace")
            position = hostname.end()
    service = UNKNOWN_SERVICE
    tag = _TAG.match(data, position)
    if tag is not None:
        service = tag[1].decode("utf-8", "replace")
        if tag[2]:
            attributes["pid"] = tag[2].decode("utf-8", "replace")
        position = tag.end()
    return (
        timestamp_ns,
        service,
        host,
        level,
        data[position:].decode("utf-8", "replace"),
        attributes,
    )


@lru_cache(maxsize=4096)
def _second_ns(text: bytes) -> int:
    """`YYYY-MM-DDThh:mm:ss±hh:mm` (or `Z`) as ns since the epoch; cached, as a busy sender
    repeats the same second thousands of times."""
    return int(datetime.fromisoformat(text.decode()).timestamp()) * 1_000_000_000


def rfc3339_ns(stamp: bytes) -> int:
    """An RFC 3339 timestamp with any number of fraction digits, kept to the nanosecond; 0 (the
    time of receipt) if it is not one."""
    try:
        if len(stamp) > 19 and stamp[19:20] == b".":
            fraction_end = 20
            while fraction_end < len(stamp) and 0x30 <= stamp[fraction_end] <= 0x39:
                fraction_end += 1
            digits = stamp[20:fraction_end][:9]
            zone = stamp[fraction_end:] or b"Z"
            fraction = int(digits.ljust(9, b"0")) if digits else 0
            return _second_ns(stamp[:19] + _zone(zone)) + fraction
        return _second_ns(stamp[:19] + _zone(stamp[19:] or b"Z"))
    except ValueError:
        return 0


def _zone(zone: bytes) -> bytes:
    return b"+00:00" if zone in (b"Z", b"z") else zone


def bsd_ns(stamp: bytes, received_ns: int) -> int:
    """`Mmm dd hh:mm:ss`, taken as UTC in the year that puts it nearest to the receipt."""
    # Cached per receipt hour: a busy sender repeats each second's stamp many times.
    return _bsd_ns(stamp, received_ns // 3_600_000_000_000 * 3_600_000_000_000)


@lru_cache(maxsize=4096)
def _bsd_ns(stamp: bytes, received_ns: int) -> int:
    try:
        month = _MONTHS[stamp[:3]]
        day = int(stamp[4:6])
        hour, minute, second = int(stamp[7:9]), int(stamp[10:12]), int(stamp[13:15])
        received = datetime.fromtimestamp(received_ns / 1e9, UTC)
        moment = datetime(received.year, month, day, hour, minute, second, tzinfo=UTC)
    except (KeyError, ValueError):
        return 0
    # A December line received on 1 January belongs to last year.
    if moment - received > timedelta(days=1):
        moment = moment.replace(year=moment.year - 1)
    return int(moment.timestamp()) * 1_000_000_000
