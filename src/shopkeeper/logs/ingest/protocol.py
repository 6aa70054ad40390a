"""Routes of protocol-compatible endpoints answer errors in their protocol's own format (a
Loki client reads plain text, an Elasticsearch client an `error` object), including the errors
raised by dependencies such as authentication."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from shopkeeper.core.errors import DomainError

ErrorRenderer = Callable[[Request, DomainError], Response]


def protocol_route(render: ErrorRenderer) -> type[APIRoute]:
    """An APIRoute class whose domain errors are rendered by `render`."""

    class ProtocolRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def handle(request: Request) -> Response:
                try:
                    return await handler(request)
                except DomainError as exc:
                    return render(request, exc)

            return handle

    return ProtocolRoute


_ERROR_STATUSES = {
    400: "Malformed payload",
    401: "Missing or invalid API key",
    403: "The key lacks `logs:write`",
    413: "Body over SHOPKEEPER_LOGS_MAX_BODY_BYTES, compressed or decompressed",
    429: "Too many lines waiting to be stored; see Retry-After. Nothing was stored",
    503: "The log storage did not take the lines; retry. Nothing was stored",
}


def protocol_responses(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` of a protocol endpoint: its errors, in the protocol's format."""
    return {
        status: {"description": f"{text} ({description})", "content": {media_type: {}}}
        for status, text in _ERROR_STATUSES.items()
    }
