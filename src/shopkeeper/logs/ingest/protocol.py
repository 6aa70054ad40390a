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
