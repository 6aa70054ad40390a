"""Events and jobs across real processes: `shopkeeper worker` consuming from RabbitMQ, a real SMTP
server receiving the mail, and what happens when the worker dies or a job keeps failing."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq
from sqlalchemy import func, select

from shopkeeper.accounts import service as users_service
from shopkeeper.core.mail import OutboundMail
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, settings_env
from tests.support.platform import SmtpSink, background_settings, eventually, postgres_only


def _worker_settings(
    settings_factory: Callable[..., Settings],
    smtp: SmtpSink,
    rabbitmq: str,
    broker_queue: str,
    **overrides: Any,
) -> Settings:
    return background_settings(
        settings_factory,
        broker_url=rabbitmq,
        broker_queue=broker_queue,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        **overrides,
    )


async def _register(runtime: Runtime, email: str) -> None:
    async with runtime.db.session() as session:
        await users_service.register_user(session, email=email, password="correct-horse-1")


async def _mail_rows(runtime: Runtime) -> list[OutboundMail]:
    async with runtime.db.session() as session:
        return list((await session.scalars(select(OutboundMail))).all())


async def _all_events_published(runtime: Runtime) -> bool:
    async with runtime.db.session() as session:
        pending = await session.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.published_at.is_(None))
        )
    return pending == 0


async def test_event_committed_by_a_service_reaches_a_worker_process_over_rabbitmq(
    backend: str,
    runtime: Runtime,
    settings_factory: Callable[..., Settings],
    process_factory: Callable[..., ServerProcess],
    smtp_server: SmtpSink,
    rabbitmq: str,
    broker_queue: str,
) -> None:
    postgres_only(backend)
    settings = _worker_settings(settings_factory, smtp_server, rabbitmq, broker_queue)
    process_factory(["worker"], settings_env(settings))

    await _register(runtime, "grace@example.com")

    await eventually(lambda: len(smtp_server.messages) == 1, what="the welcome mail")
    message = smtp_server.messages[0]
    assert message["To"] == "grace@example.com"
    assert message["Subject"] == "Welcome to shopkeeper"
    [mail] = await _mail_rows(runtime)
    await eventually(lambda: _mail_rows_sent(runtime), what="the mail marked sent")
    assert message["Message-ID"] == f"<{mail.id}@localhost>"


async def _mail_rows_sent(runtime: Runtime) -> bool:
    return [row.status for row in await _mail_rows(runtime)] == ["sent"]


async def test_worker_killed_while_sending_still_sends_exactly_one_welcome_mail(
    backend: str,
    runtime: Runtime,
    settings_factory: Callable[..., Settings],
    process_factory: Callable[..., ServerProcess],
    smtp_server: SmtpSink,
    rabbitmq: str,
    broker_queue: str,
) -> None:
    postgres_only(backend)
    settings = _worker_settings(
        settings_factory, smtp_server, rabbitmq, broker_queue, job_max_retries=8
    )
    env = settings_env(settings)
    first = process_factory(["worker"], env)

    def kill_worker_during_first_delivery(attempt: int) -> str | None:
        if attempt == 1:
            # SIGKILL: no cleanup, no ack; the message stays with RabbitMQ.
            os.kill(first.process.pid, signal.SIGKILL)
            return "451 4.3.0 connection lost"
        return None

    smtp_server.on_data = kill_worker_during_first_delivery
    await _register(runtime, "linus@example.com")
    await eventually(lambda: first.process.poll() is not None, what="the first worker to die")
    [claimed] = await _mail_rows(runtime)
    assert claimed.status == "sending"  # it died holding the claim

    process_factory(["worker"], env)

    await eventually(lambda: _mail_rows_sent(runtime), what="the mail sent by the second worker")
    await eventually(lambda: _all_events_published(runtime), what="the outbox to drain")
    assert smtp_server.attempts == 2
    assert [message["To"] for message in smtp_server.messages] == ["linus@example.com"]


async def test_a_job_that_keeps_failing_ends_in_the_dead_letter_queue(
    backend: str,
    runtime: Runtime,
    settings_factory: Callable[..., Settings],
    process_factory: Callable[..., ServerProcess],
    smtp_server: SmtpSink,
    rabbitmq: str,
    broker_queue: str,
) -> None:
    postgres_only(backend)
    settings = _worker_settings(
        settings_factory, smtp_server, rabbitmq, broker_queue, job_max_retries=2
    )
    worker = process_factory(["worker"], settings_env(settings))
    smtp_server.on_data = lambda attempt: "554 5.7.1 relay refused"

    await _register(runtime, "margaret@example.com")

    received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def dead_lettered() -> bool:
        # A fresh connection each time: asking for a queue the worker has not declared yet
        # closes the channel, and one whose process RabbitMQ is still starting (`noproc`, 541)
        # closes the whole connection.
        try:
            connection = await aio_pika.connect(rabbitmq)
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(f"{broker_queue}.dead_letter", ensure=True)
                message = await queue.get(fail=False)
                if message is not None:
                    received.append(message)
                    await message.ack()
        except (aiormq.exceptions.AMQPError, ConnectionError):
            return False
        return bool(received)

    await eventually(dead_lettered, what="a message in the dead-letter queue")

    [message] = received
    assert message.headers["task_name"] == "shopkeeper.dispatch_event"
    assert b"shopkeeper.core.mail.deliver_queued_mail" in message.body
    assert smtp_server.attempts == 3  # the first try and two retries
    assert smtp_server.messages == []
    [mail] = await _mail_rows(runtime)
    assert mail.status == "queued"
    assert "job_dead_lettered" in worker.output()
