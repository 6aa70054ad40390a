"""The stream queue itself: declared the same way by gateways and writers."""

from __future__ import annotations

from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue


def stream_arguments(max_bytes: int) -> dict[str, Any]:
    # Streams keep messages after they are read (retention by size, not by acks), so a writer
    # that crashed re-reads from its own recorded offset.
    return {
        "x-queue-type": "stream",
        "x-max-length-bytes": max_bytes,
        "x-stream-max-segment-size-bytes": 64 * 1024 * 1024,
    }


async def open_stream(
    connection: AbstractConnection,
    name: str,
    max_bytes: int,
    *,
    publisher_confirms: bool = False,
    prefetch: int | None = None,
) -> tuple[AbstractChannel, AbstractQueue]:
    """A channel and the stream queue, created with our arguments if it does not exist. An
    existing stream is used as it is (its retention may have been changed by an operator or
    a policy; redeclaring with other arguments would fail)."""
    channel = await connection.channel(publisher_confirms=publisher_confirms)
    try:
        queue = await channel.declare_queue(name, passive=True)
    except aio_pika.exceptions.ChannelNotFoundEntity:
        channel = await connection.channel(publisher_confirms=publisher_confirms)
        queue = await channel.declare_queue(
            name, durable=True, arguments=stream_arguments(max_bytes)
        )
    if prefetch is not None:
        await channel.set_qos(prefetch_count=prefetch)
    return channel, queue


async def connect(url: str, *, within: float) -> aio_pika.abc.AbstractRobustConnection:
    return await aio_pika.connect_robust(url, timeout=within)
