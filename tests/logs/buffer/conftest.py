"""A RabbitMQ stream of the test's own, deleted afterwards."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator

import aio_pika
import pytest

from tests.conftest import require_service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def stream_name() -> AsyncIterator[str]:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    name = f"test.logs.{secrets.token_hex(4)}"
    yield name
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        with contextlib.suppress(aio_pika.exceptions.AMQPError):
            await channel.queue_delete(name)
