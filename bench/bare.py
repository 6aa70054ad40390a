"""The yardstick: a bare ASGI app answering every request with a fixed JSON body, served the
same way as shopkeeper (gunicorn + uvicorn workers), so ratios measure our code, not the box."""

from __future__ import annotations

from typing import Any

BODY = b'{"id":"0190f4c2-8a1e-7c3b-9d5e-2f6a7b8c9d0e","name":"Classic Cotton T-Shirt","ok":true}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
