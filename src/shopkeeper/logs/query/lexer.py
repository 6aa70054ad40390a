"""LogQL tokens: strings (Go quoted or raw), numbers, durations, byte sizes, names, operators."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from shopkeeper.logs.query.errors import ParseError

Kind = Literal["STRING", "NUMBER", "DURATION", "BYTES", "IDENT", "OP", "EOF"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    text: str
    pos: int
    value: float | str | None = None


_DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}
_BYTE_UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+(?![A-Za-z0-9_])")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_BYTES = re.compile(r"(\d+(?:\.\d+)?)([KMGTP]i?B|B)(?![A-Za-z0-9_])", re.IGNORECASE)
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+|NaN|Inf")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = (
    "|=", "|~", "!=", "!~", "=~", "==", ">=", "<=",
    "|", "=", ">", "<", "{", "}", "(", ")", "[", "]", ",", "+", "-", "*", "/", "%", "^",
)  # fmt: skip
_SPACE = re.compile(r"(?:\s+|#[^\n]*)+")
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", "'": "'", '"': '"',
}  # fmt: skip


def parse_duration_seconds(text: str) -> float | None:
    """A Go/Prometheus duration (`1h30m`, `500ms`, `1.5s`, `2d`) in seconds, or None."""
    if not _DURATION.fullmatch(text):
        return None
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def parse_bytes(text: str) -> float | None:
    match = _BYTES.fullmatch(text.strip())
    if not match:
        return None
    return float(match.group(1)) * _BYTE_UNITS[match.group(2).lower()]


def _unquote(text: str, start: int, source: str) -> tuple[str, int]:
    """Reads a Go interpreted string starting after its opening quote; returns (value, end)."""
    out: list[str] = []
    i = start
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch == "\n":
            break
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        i += 1
        if i >= len(text):
            break
        esc = text[i]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 1
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = text[i + 1 : i + 1 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ParseError("invalid escape in string", i, source)
            out.append(chr(int(digits, 16)))
            i += 1 + width
        elif esc in "01234567":
            digits = text[i : i + 3]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ParseError("invalid escape in string", i, source)
            out.append(chr(int(digits, 8)))
            i += 3
        else:
            raise ParseError(f"invalid escape \\{esc} in string", i, source)
    raise ParseError("literal not terminated", start - 1, source)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while True:
        space = _SPACE.match(text, i)
        if space:
            i = space.end()
        if i >= n:
            tokens.append(Token("EOF", "", i))
            return tokens
        ch = text[i]
        if ch == '"':
            value, end = _unquote(text, i + 1, text)
            tokens.append(Token("STRING", text[i:end], i, value))
            i = end
            continue
        if ch == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise ParseError("literal not terminated", i, text)
            tokens.append(Token("STRING", text[i : end + 1], i, text[i + 1 : end]))
            i = end + 1
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit()):
            if m := _DURATION.match(text, i):
                seconds = parse_duration_seconds(m.group())
                tokens.append(Token("DURATION", m.group(), i, seconds))
                i = m.end()
                continue
            if m := _BYTES.match(text, i):
                tokens.append(Token("BYTES", m.group(), i, parse_bytes(m.group())))
                i = m.end()
                continue
            if m := _NUMBER.match(text, i):
                raw = m.group()
                number = float(int(raw, 16)) if raw.lower().startswith("0x") else float(raw)
                tokens.append(Token("NUMBER", raw, i, number))
                i = m.end()
                continue
        if m := _IDENT.match(text, i):
            tokens.append(Token("IDENT", m.group(), i, m.group()))
            i = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("OP", op, i, op))
                i += len(op)
                break
        else:
            raise ParseError(f"syntax error: unexpected character {ch!r}", i, text)
