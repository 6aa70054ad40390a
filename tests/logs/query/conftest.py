"""A generated set of lines stored once per module under its own tenant, a Loki API client
reading as that tenant, and a reference evaluation of LogQL written from the spec (not from
the compiler) to compare the API's answers with."""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from shopkeeper.core.settings import Settings
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import LogStore, records_batch
from tests.logs.conftest import make_key

WORDS = (
    "timeout", "payment", "checkout", "GET", "POST", "user", "cart", "stock", "error",
    "failed", "ok", "retry", "db", "cache", "miss", "hit", "slow", "order", "ship", "réseau",
)  # fmt: skip
SERVICES = ("shop", "api", "worker")
HOSTS = ("h1", "h2", "h3")
LEVELS = ("debug", "info", "warn", "error")
NS = 1_000_000_000


@dataclass(frozen=True)
class Line:
    ts: int
    message: str
    service: str
    host: str
    level: str
    source: str
    trace_id: str
    attributes: dict[str, str]
    label_keys: tuple[str, ...]

    def labels(self) -> dict[str, str]:
        """Every label of the line, as a LogQL matcher sees it."""
        out = {
            "service": self.service,
            "host": self.host,
            "level": self.level,
            "source": self.source,
            "trace_id": self.trace_id,
        }
        for key, value in self.attributes.items():
            out[re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
        return {k: v for k, v in out.items() if v}

    def stream(self) -> dict[str, str]:
        out = {"service": self.service, "host": self.host, "level": self.level}
        out["source"] = self.source
        out.update({k: v for k, v in self.attributes.items() if k in self.label_keys})
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class Dataset:
    tenant: str
    lines: list[Line]
    now: int


def generate(now: int, count: int = 600, seed: int = 7) -> list[Line]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        # Spread over the last 50 minutes, distinct timestamps (ns) so orders are total.
        ts = now - 50 * 60 * NS + i * (50 * 60 * NS // count) + rng.randrange(1000)
        service = rng.choice(SERVICES)
        level = rng.choice(LEVELS)
        status = rng.choice(("200", "200", "404", "500", "503"))
        kind = i % 3
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 7)))
        latency = f"{rng.randrange(1, 3000)}ms"
        if kind == 0:
            message = f"{words} took {latency} status={status}"
        elif kind == 1:
            message = json.dumps(
                {"msg": words, "status": int(status), "latency": latency, "req": {"path": "/p"}}
            )
        else:
            message = f'level={level} msg="{words}" status={status} latency={latency}'
        attributes = {"http.status": status}
        label_keys: tuple[str, ...] = ()
        if i % 4 == 0:
            attributes["env"] = rng.choice(("prod", "staging"))
            label_keys = ("env",)
        lines.append(
            Line(
                ts=ts,
                message=message,
                service=service,
                host=rng.choice(HOSTS),
                level=level,
                source="ndjson" if i % 2 else "loki",
                trace_id=f"{i:032x}" if i % 5 == 0 else "",
                attributes=attributes,
                label_keys=label_keys,
            )
        )
    return lines


async def store_lines(store: LogStore, tenant: str, lines: list[Line]) -> None:
    for source in ("ndjson", "loki"):
        records = [
            LogRecord(
                message=line.message,
                timestamp_ns=line.ts,
                service=line.service,
                host=line.host,
                level=line.level,
                trace_id=line.trace_id,
                attributes=dict(line.attributes),
                label_keys=list(line.label_keys),
            )
            for line in lines
            if line.source == source
        ]
        await store.insert(records_batch(records, tenant=tenant, source=source))


@pytest.fixture(scope="module")
async def dataset(log_store: LogStore) -> Dataset:
    now = time.time_ns()
    tenant = f"q_{secrets.token_hex(4)}"
    lines = generate(now)
    await store_lines(log_store, tenant, lines)
    return Dataset(tenant, lines, now)


@pytest.fixture(scope="module")
async def read_key(logs_settings: Settings, dataset: Dataset) -> str:
    """A real `logs:read` key of the dataset's tenant."""
    return await make_key(logs_settings, scopes=["logs:read"], tenant=dataset.tenant)


@pytest.fixture
async def loki(logs_app: FastAPI, read_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """A Loki API client reading with the dataset tenant's key."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=logs_app),
        base_url="http://test/api/v1/logs/loki/api/v1",
        headers={"Authorization": f"Bearer {read_key}"},
    ) as http:
        yield http


# -- the reference: LogQL semantics written out plainly ---------------------------------------

_WORD = "[0-9A-Za-z\u0080-\U0010ffff]"


def ref_matcher(labels: dict[str, str], name: str, op: str, value: str) -> bool:
    actual = labels.get(name, "")
    if op == "=":
        return actual == value
    if op == "!=":
        return actual != value
    found = re.fullmatch(value, actual) is not None
    return found if op == "=~" else not found


def ref_line_filter(message: str, op: str, value: str) -> bool:
    if op in ("|=", "!="):
        if re.fullmatch(f"{_WORD}+", value):
            found = re.search(f"(?<!{_WORD}){re.escape(value)}(?!{_WORD})", message) is not None
        else:
            found = value in message
        return found if op == "|=" else not found
    found = re.search(value, message) is not None
    return found if op == "|~" else not found
