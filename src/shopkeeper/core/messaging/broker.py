"""Background jobs on taskiq: an in-process broker when embedded, RabbitMQ when
`SHOPKEEPER_BROKER_URL` is set; the same task code runs in both. Failed jobs are retried with
backoff, then dead-lettered.

The broker knows one task, the event dispatcher, whose function the runtime passes in
(`JobQueue(settings, dispatch=...)`): this module runs jobs, it does not know what they do.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aio_pika import DeliveryMode, Message
from prometheus_client import Counter, Histogram
from taskiq import AsyncBroker, InMemoryBroker, TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.acks import AcknowledgeType
from taskiq.kicker import AsyncKicker
from taskiq.receiver import Receiver
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_pika.exchange import Exchange
from taskiq_aio_pika.queue import Queue, QueueType

from shopkeeper.core.settings import Settings

log = structlog.get_logger(__name__)

DISPATCH_TASK = "shopkeeper.dispatch_event"
"""The task name of "run handler H for event E" on the wire; fixed, since queued messages
outlive deploys."""

JOBS_RUN = Counter("shopkeeper_jobs_run_total", "Job runs finished, failed or not", ["task"])
JOBS_FAILED = Counter("shopkeeper_jobs_failed_total", "Job runs that raised", ["task"])
JOB_DURATION = Histogram(
    "shopkeeper_job_duration_seconds",
    "Job run time",
    ["task"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
JOBS_RETRIED = Counter("shopkeeper_jobs_retried_total", "Job runs retried after an error", ["task"])
JOBS_DEAD_LETTERED = Counter(
    "shopkeeper_jobs_dead_lettered_total", "Jobs that failed their last retry", ["task"]
)

Dispatch = Callable[[uuid.UUID, str], Awaitable[object]]
"""Run the handler named by the second argument for the stored event with the first's id."""


def dead_letter_queue_name(settings: Settings) -> str:
    return f"{settings.broker_queue}.dead_letter"


def build_broker(settings: Settings) -> AsyncBroker:
    """RabbitMQ when a broker URL is configured, otherwise a broker that runs tasks in-process."""
    broker: AsyncBroker
    if settings.broker_url is None:
        broker = InMemoryBroker(propagate_exceptions=False, max_async_tasks=50)
    else:
        name = settings.broker_queue
        broker = AioPikaBroker(
            url=settings.broker_url,
            exchange=Exchange(name=name),
            task_queues=[Queue(name=name, type=QueueType.QUORUM)],
            dead_letter_queue=Queue(name=dead_letter_queue_name(settings), type=QueueType.QUORUM),
            # Retries wait here until their TTL sends them back to the task queue.
            delay_queue=Queue(name=f"{name}.delay", type=QueueType.CLASSIC),
            qos=20,
        )
    broker.add_middlewares(JobMetrics(), RetryThenDeadLetter(settings))
    return broker


class JobQueue:
    """The process's broker and its dispatch task. `start()` before kicking;
    `start(worker=True)` in the process that consumes (`shopkeeper worker`, embedded `serve`)."""

    def __init__(self, settings: Settings, *, dispatch: Dispatch) -> None:
        self.settings = settings
        self.broker = build_broker(settings)
        self.started = False

        async def dispatch_event(event_id: str, handler: str) -> None:
            await dispatch(uuid.UUID(event_id), handler)

        self.dispatch_task = self.broker.register_task(dispatch_event, task_name=DISPATCH_TASK)

    @property
    def in_process(self) -> bool:
        return isinstance(self.broker, InMemoryBroker)

    async def publish_dispatch(self, event_id: uuid.UUID, handler: str) -> None:
        """Queue "run `handler` for event `event_id`", starting the broker client if needed."""
        if not self.started:
            await self.start()
        await self.dispatch_task.kiq(str(event_id), handler)

    async def start(self, *, worker: bool = False) -> None:
        if self.started:
            return
        self.broker.is_worker_process = worker
        await self.broker.startup()
        self.started = True

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if isinstance(self.broker, InMemoryBroker):
            await self.broker.wait_all()
        await self.broker.shutdown()

    async def consume(self, stop: asyncio.Event) -> None:
        """Run consumers until `stop` is set (RabbitMQ only: the in-process broker runs a task
        the moment it is kicked). Messages are acknowledged after their task finished."""
        await self.start(worker=True)
        receiver = Receiver(
            self.broker,
            max_async_tasks=self.settings.worker_concurrency,
            propagate_exceptions=False,
            run_startup=False,
            ack_type=AcknowledgeType.WHEN_EXECUTED,
            wait_tasks_timeout=20,
        )
        await receiver.listen(stop)


class JobMetrics(TaskiqMiddleware):
    """Count every job run by task name, and how long it took. taskiq's own `execution_time`
    is rounded to 10 ms, too coarse for handlers that mostly take a few milliseconds."""

    def __init__(self) -> None:
        super().__init__()
        self._started: dict[str, float] = {}

    def pre_execute(self, message: TaskiqMessage) -> TaskiqMessage:
        self._started[message.task_id] = time.perf_counter()
        return message

    def post_execute(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        started = self._started.pop(message.task_id, None)
        elapsed = time.perf_counter() - started if started is not None else result.execution_time
        JOB_DURATION.labels(message.task_name).observe(elapsed)
        JOBS_RUN.labels(message.task_name).inc()
        if result.is_err:
            JOBS_FAILED.labels(message.task_name).inc()


class RetryThenDeadLetter(TaskiqMiddleware):
    """Retry a failed task with exponential backoff; after the last retry move it to the
    dead-letter queue (RabbitMQ) or log it (in-process), and count it either way.

    taskiq acknowledges a message once the task returned or raised, so RabbitMQ's own
    dead-lettering (which needs a reject) never fires; the retry is a new message, published
    before the failed one is acknowledged, so a crash in between duplicates rather than loses."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.max_retries = settings.job_max_retries
        self.base_delay = settings.job_retry_base_seconds
        self.dead_letter_queue = dead_letter_queue_name(settings)
        self._pending: set[asyncio.Task[None]] = set()

    def delay_for(self, attempt: int) -> float:
        return float(min(self.base_delay * 2 ** (attempt - 1), 300.0))

    async def on_error(
        self, message: TaskiqMessage, result: TaskiqResult[Any], exception: BaseException
    ) -> None:
        retries = int(message.labels.get("retries", 0))
        if retries < self.max_retries:
            delay = self.delay_for(retries + 1)
            JOBS_RETRIED.labels(message.task_name).inc()
            log.warning(
                "job_retry",
                task=message.task_name,
                retry=retries + 1,
                of=self.max_retries,
                delay_seconds=delay,
                error=repr(exception),
            )
            labels = {**message.labels, "retries": retries + 1}
            if isinstance(self.broker, InMemoryBroker):
                # The in-process broker ignores the `delay` label: wait here, off the caller's path.
                task = asyncio.create_task(self._kick_later(message, labels, delay))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
            else:
                await self._kick(message, {**labels, "delay": delay})
            return
        JOBS_DEAD_LETTERED.labels(message.task_name).inc()
        log.error(
            "job_dead_lettered",
            task=message.task_name,
            task_id=message.task_id,
            args=message.args,
            kwargs=message.kwargs,
            error=repr(exception),
            queue=self.dead_letter_queue,
        )
        if isinstance(self.broker, AioPikaBroker):
            await self._dead_letter(message)

    async def _kick(self, message: TaskiqMessage, labels: dict[str, Any]) -> None:
        kicker: AsyncKicker[Any, Any] = AsyncKicker(
            task_name=message.task_name, broker=self.broker, labels=labels
        )
        await kicker.kiq(*message.args, **message.kwargs)

    async def _kick_later(
        self, message: TaskiqMessage, labels: dict[str, Any], delay: float
    ) -> None:
        await asyncio.sleep(delay)
        await self._kick(message, labels)

    async def _dead_letter(self, message: TaskiqMessage) -> None:
        assert isinstance(self.broker, AioPikaBroker)
        channel = self.broker.write_channel
        assert channel is not None
        body = self.broker.formatter.dumps(message).message
        await channel.default_exchange.publish(
            Message(
                body=body,
                headers={"task_id": message.task_id, "task_name": message.task_name},
                delivery_mode=DeliveryMode.PERSISTENT,
            ),
            routing_key=self.dead_letter_queue,
        )


async def check_broker(settings: Settings) -> None:
    """Readiness: the RabbitMQ server accepts a connection."""
    import aio_pika

    assert settings.broker_url is not None
    connection = await aio_pika.connect(settings.broker_url, timeout=2)
    await connection.close()
