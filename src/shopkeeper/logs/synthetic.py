"""A realistic synthetic log stream for demos and benchmarks: requests entering through the
gateway and fanning out to services, each request's lines sharing a trace id, request logs
with route, status and duration, application logs, occasional warnings and errors with the
messages real services write."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any, Final

import orjson

SERVICES: Final = ("storefront", "checkout", "payments", "inventory", "search", "auth")
ROUTES: Final = (
    ("GET", "/api/v1/products", "search"),
    ("GET", "/api/v1/products/{id}", "storefront"),
    ("POST", "/api/v1/cart/items", "storefront"),
    ("POST", "/api/v1/checkout", "checkout"),
    ("POST", "/api/v1/payments/{id}/capture", "payments"),
    ("GET", "/api/v1/orders/{id}", "checkout"),
    ("POST", "/api/v1/auth/token", "auth"),
    ("PATCH", "/api/v1/inventory/{sku}", "inventory"),
)
DOWNSTREAM: Final = {
    "checkout": ("inventory", "payments"),
    "storefront": ("search", "inventory"),
    "payments": (),
    "search": (),
    "inventory": (),
    "auth": (),
}
APP_MESSAGES: Final = {
    "checkout": ("order {order} placed with {items} items", "reserving stock for order {order}"),
    "payments": ("payment {payment} authorised for {amount} EUR", "capturing payment {payment}"),
    "inventory": ("reserved {items} units of sku {sku}", "stock of sku {sku} now {stock}"),
    "search": ("query matched {hits} products in {took}ms", "cache hit for query"),
    "storefront": ("rendered product page {sku}", "cart {cart} updated"),
    "auth": ("user {user} signed in", "token refreshed for user {user}"),
}
WARNINGS: Final = (
    "slow query took {took}ms on orders",
    "retrying upstream call to {service} after timeout",
    "stock of sku {sku} low: {stock} left",
)
ERRORS: Final = (
    "payment {payment} declined: insufficient funds",
    "upstream {service} timed out after 5000ms",
    "deadlock detected while reserving sku {sku}; retrying",
    "connection refused by postgres at 10.0.3.7:5432",
)


def synthetic_lines(
    count: int | None = None, *, seed: int = 1, start_ns: int | None = None, rate: float = 0.0
) -> Iterator[dict[str, Any]]:
    """Lines as dicts (NDJSON fields of API.md); `count` None: forever. Timestamps advance by
    about a millisecond per line from `start_ns` (default now), or follow the clock with `rate`."""
    rng = random.Random(seed)
    clock = start_ns if start_ns is not None else time.time_ns()
    produced = 0
    while count is None or produced < count:
        for line in _request(rng, clock):
            if count is not None and produced >= count:
                return
            if rate:
                clock = time.time_ns()
            else:
                clock += rng.randint(200_000, 1_800_000)
            line["timestamp"] = clock
            produced += 1
            yield line


def _request(rng: random.Random, now: int) -> Iterator[dict[str, Any]]:
    method, route, service = rng.choice(ROUTES)
    trace_id = f"{rng.getrandbits(128):032x}"
    values = {
        "order": rng.randint(10_000, 99_999),
        "items": rng.randint(1, 6),
        "payment": f"pay_{rng.getrandbits(40):010x}",
        "amount": f"{rng.randint(5, 400)}.{rng.randint(0, 99):02d}",
        "sku": f"SKU-{rng.randint(100, 999)}",
        "stock": rng.randint(0, 40),
        "hits": rng.randint(0, 300),
        "took": rng.randint(1, 2500),
        "cart": rng.getrandbits(32),
        "user": rng.randint(1, 5000),
        "service": rng.choice(SERVICES),
    }
    host = f"{service}-{rng.randint(1, 4)}"
    roll = rng.random()
    status = 500 if roll < 0.01 else 404 if roll < 0.04 else 201 if method == "POST" else 200
    for callee in (service, *DOWNSTREAM[service]):
        span_id = f"{rng.getrandbits(64):016x}"
        line: dict[str, Any] = {
            "service": callee,
            "host": f"{callee}-{rng.randint(1, 4)}",
            "trace_id": trace_id,
            "span_id": span_id,
        }
        kind = rng.random()
        if status == 500 and callee != service:
            line |= {"level": "error", "message": rng.choice(ERRORS).format(**values)}
        elif kind < 0.03:
            line |= {"level": "warn", "message": rng.choice(WARNINGS).format(**values)}
        elif kind < 0.25:
            line |= {"level": "debug", "message": rng.choice(APP_MESSAGES[callee]).format(**values)}
        else:
            line |= {"level": "info", "message": rng.choice(APP_MESSAGES[callee]).format(**values)}
        yield line
    duration = round(rng.lognormvariate(3, 0.8), 2)
    path = route.replace("{id}", str(values["order"])).replace("{sku}", str(values["sku"]))
    yield {
        "service": service,
        "host": host,
        "level": "error" if status >= 500 else "info",
        "message": f"{method} {path} {status} {duration}ms",
        "trace_id": trace_id,
        "http": {"method": method, "route": route, "status": status},
        "duration_ms": duration,
        "request_id": f"{rng.getrandbits(64):016x}",
    }


def ndjson(lines: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    for line in lines:
        yield orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)
