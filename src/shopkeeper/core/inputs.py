"""One gate for text the outside world sends: no NUL characters, no unpaired UTF-16 surrogates,
and bodies that say they are text must be UTF-8.

PostgreSQL refuses NUL in `text` and `jsonb` (a 500 deep in a transaction), and no database nor
JSON encoder can store or send a lone surrogate. Checked once here, for the query string, the
path, every header, and JSON and form bodies, before any route runs, so no endpoint has to
remember: the client gets a 422 problem+json naming where the bad character was.

Paths in `exempt_prefixes` (payment provider callbacks) pass unchecked: their handlers must keep
an audit record of whatever arrived, so they use `contains_forbidden` and `scrub` themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shopkeeper.core.errors import problem_response

FORBIDDEN = re.compile("[\x00\ud800-\udfff]")
# A JSON body can only carry a NUL or a surrogate as a `\u` escape (raw control characters are
# invalid JSON); bodies without one skip the parse-and-walk.
_JSON_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_JSON_TOKENS = re.compile(rb'[\[\]{}"\\]')
MAX_JSON_DEPTH = 32
"""Deeper JSON bodies are refused before any parser recurses into them (Python's `json` raises
RecursionError near 1000 levels, orjson refuses to encode past 254)."""
_MESSAGE = "NUL characters, unpaired UTF-16 surrogates and non-UTF-8 text are not accepted"


def contains_forbidden(value: Any) -> bool:
    """True if `value` (a str, or JSON-like data of them, keys included) holds a NUL or a lone
    surrogate."""
    if isinstance(value, str):
        return FORBIDDEN.search(value) is not None
    if isinstance(value, dict):
        return any(contains_forbidden(k) or contains_forbidden(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_forbidden(item) for item in value)
    return False


def scrub(value: Any) -> Any:
    """`value` with every NUL and lone surrogate replaced by U+FFFD: storable, for audit copies."""
    if isinstance(value, str):
        return FORBIDDEN.sub("\ufffd", value)
    if isinstance(value, dict):
        return {scrub(k): scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def body_is_clean(body: bytes) -> bool:
    """A raw text body: valid UTF-8 and free of NUL and surrogates, raw or `\\u`-escaped."""
    if b"\x00" in body:
        return False
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    if _JSON_ESCAPE.search(body) is None:
        return True
    try:
        return not contains_forbidden(json.loads(text))
    except ValueError:
        return True  # not JSON after all: the route's own parser answers that


def json_depth_within(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether no array or object in `body` nests deeper than `limit`; brackets inside strings
    do not count. Cheap for ordinary bodies: they have too few brackets to need the scan."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return True
    depth = 0
    in_string = False
    skip_to = 0  # inside a string, the character after a backslash is escaped
    for match in _JSON_TOKENS.finditer(body):
        if match.start() < skip_to:
            continue
        token = match.group()
        if in_string:
            if token == b"\\":
                skip_to = match.end() + 1
            elif token == b'"':
                in_string = False
        elif token == b'"':
            in_string = True
        elif token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return False
        elif token in (b"]", b"}"):
            depth -= 1
    return True


def _percent_decoded_clean(raw: bytes) -> bool:
    """Whether `raw` (a query string, form body or path), percent-decoded, is UTF-8 without NUL.
    Decoded whole, not name by value: `&`, `=` and `/` are ASCII, so neither a `%XX` escape nor
    a UTF-8 sequence spans them, and the answer is the same as piece by piece, in C."""
    decoded = unquote_to_bytes(raw) if b"%" in raw else raw
    if b"\x00" in decoded:
        return False
    if decoded.isascii():
        return True
    try:
        decoded.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _content_kind(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            if media == b"application/json" or media.endswith(b"+json"):
                return "json"
            if media == b"application/x-www-form-urlencoded":
                return "form"
            if media.startswith(b"text/"):
                return "json"  # same rules: UTF-8, no NUL
            return None
    return None


class InputValidationMiddleware:
    """Answer 422 to a request carrying a NUL, a lone surrogate or non-UTF-8 text anywhere we
    read text from. Bodies are buffered (they are bounded by `BodySizeLimitMiddleware`, which
    must wrap this one) and replayed to the route unchanged."""

    def __init__(self, app: ASGIApp, exempt_prefixes: Iterable[str] = ()) -> None:
        self.app = app
        self.exempt_prefixes = tuple(exempt_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        where = self._bad_head(scope)
        message = _MESSAGE
        if where is None and scope["type"] == "http":
            kind = _content_kind(scope)
            if kind is not None:
                body, receive = await _buffer(receive)
                if not body_is_clean(body) or (kind == "form" and not _percent_decoded_clean(body)):
                    where = "body"
                elif kind == "json" and not json_depth_within(body):
                    where, message = "body", f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
        if where is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Refused before the handshake: the client sees an HTTP 403 close.
            await send({"type": "websocket.close", "code": 1008})
            return
        response = problem_response(
            422,
            "validation-error",
            "Invalid input",
            message,
            None,
            errors=[{"loc": [where], "msg": message}],
        )
        await response(scope, receive, send)

    @staticmethod
    def _bad_head(scope: Scope) -> str | None:
        if FORBIDDEN.search(scope["path"]):
            return "path"
        raw_path = scope.get("raw_path")
        if raw_path and not _percent_decoded_clean(raw_path):
            return "path"
        if not _percent_decoded_clean(scope.get("query_string", b"")):
            return "query"
        for _name, value in scope["headers"]:
            if b"\x00" in value:
                return "header"
        return None


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    chunks: list[bytes] = []
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    replay = iter(messages)

    async def replaying_receive() -> Message:
        for message in replay:
            return message
        return await receive()

    return b"".join(chunks), replaying_receive
