"""One ingest request's batches as one AMQP message, so the broker confirms all of them or
none: the payloads concatenated in the body, their descriptions in one JSON header."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from shopkeeper.logs.store import Batch

HEADER = "x-shopkeeper-batches"


def encode(batches: Sequence[Batch]) -> tuple[bytes, dict[str, Any]]:
    parts = [
        {
            "id": batch.batch_id,
            "tenant": batch.tenant,
            "source": batch.source,
            "format": batch.format,
            "lines": batch.lines,
            "extra": dict(batch.extra_attributes),
            "size": len(batch.payload),
        }
        for batch in batches
    ]
    return b"".join(batch.payload for batch in batches), {HEADER: orjson.dumps(parts).decode()}


def decode(body: bytes, headers: dict[str, Any]) -> list[Batch]:
    raw = headers[HEADER]
    parts = orjson.loads(raw if isinstance(raw, bytes | str) else str(raw))
    batches = []
    position = 0
    for part in parts:
        size = int(part["size"])
        batches.append(
            Batch(
                tenant=part["tenant"],
                source=part["source"],
                format=part["format"],
                payload=body[position : position + size],
                lines=int(part["lines"]),
                extra_attributes=part["extra"],
                batch_id=part["id"],
            )
        )
        position += size
    if position != len(body):
        raise ValueError("buffer message body does not match its batch sizes")
    return batches


def line_count(headers: dict[str, Any]) -> int:
    """Lines a message carries, from its header alone."""
    raw = headers[HEADER]
    parts = orjson.loads(raw if isinstance(raw, bytes | str) else str(raw))
    return sum(int(part["lines"]) for part in parts)
