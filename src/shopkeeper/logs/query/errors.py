"""Errors of a LogQL query. The Loki endpoints answer them as Loki does: 400, plain text."""

from __future__ import annotations


class QueryError(Exception):
    """A query the client can fix (bad syntax, bad parameters, too wide a range)."""


class ParseError(QueryError):
    def __init__(self, message: str, pos: int | None = None, text: str = "") -> None:
        if pos is not None:
            line = text.count("\n", 0, pos) + 1
            col = pos - (text.rfind("\n", 0, pos) + 1) + 1
            message = f"parse error at line {line}, col {col}: {message}"
        else:
            message = f"parse error : {message}"
        super().__init__(message)


class Unsupported(QueryError):
    """Valid LogQL we do not evaluate: refused by name rather than answered wrongly."""

    def __init__(self, what: str) -> None:
        super().__init__(f"unsupported LogQL: {what} is not supported by shopkeeper")
