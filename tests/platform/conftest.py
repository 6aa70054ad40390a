"""Real servers for the platform tests: an SMTP server (aiosmtpd), RabbitMQ queues unique to
each test, and polling helpers."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import aio_pika
import pytest
from aiosmtpd.controller import Controller

from tests.conftest import BROKER_URL, REDIS_URL, free_port, require_service
from tests.support.platform import SmtpSink


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def rabbitmq() -> str:
    require_service("RabbitMQ", "127.0.0.1", 5672)
    return BROKER_URL


@pytest.fixture
def redis_url() -> str:
    require_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
async def broker_queue(rabbitmq: str) -> AsyncIterator[str]:
    """A queue name of this test's own; its queues and exchange are deleted afterwards."""
    name = f"shopkeeper-test-{secrets.token_hex(4)}"
    yield name
    connection = await aio_pika.connect(rabbitmq)
    async with connection:
        channel = await connection.channel()
        for queue in (name, f"{name}.dead_letter", f"{name}.delay"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(name)
