"""`shopkeeper worker --metrics-port` serves the counters the worker's jobs increment."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shopkeeper.accounts import service as users_service
from shopkeeper.core.outbox import DISPATCH_TASK
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, free_port, settings_env
from tests.platform.conftest import SmtpSink, background_settings, eventually, postgres_only


async def _samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
    """Every sample of the endpoint by (name, labels); None while it does not answer yet."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(url)
    except httpx.HTTPError:
        return None
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_worker_serves_metrics_counting_the_jobs_it_ran(
    backend: str,
    runtime: Runtime,
    settings_factory: Callable[..., Settings],
    process_factory: Callable[..., ServerProcess],
    smtp_server: SmtpSink,
    rabbitmq: str,
    broker_queue: str,
) -> None:
    postgres_only(backend)
    settings = background_settings(
        settings_factory,
        broker_url=rabbitmq,
        broker_queue=broker_queue,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
    )
    port = free_port()
    worker = process_factory(["worker", "--metrics-port", str(port)], settings_env(settings))
    url = f"http://127.0.0.1:{port}/metrics"
    dispatch = frozenset({("task", DISPATCH_TASK)})

    before: dict[tuple[str, frozenset[tuple[str, str]]], float] | None = None

    async def endpoint_answers() -> bool:
        nonlocal before
        assert worker.process.poll() is None, worker.output()[-3000:]
        before = await _samples(url)
        return before is not None

    await eventually(endpoint_answers, what="the worker's metrics endpoint")
    assert before is not None
    assert ("shopkeeper_jobs_run_total", dispatch) not in before

    async with runtime.db.session() as session:
        await users_service.register_user(
            session, email="ada@example.com", password="correct-horse-1"
        )
    await eventually(lambda: len(smtp_server.messages) == 1, what="the welcome mail")

    after: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    async def job_counted() -> bool:
        nonlocal after
        after = await _samples(url) or {}
        return after.get(("shopkeeper_mails_sent_total", frozenset({("template", "welcome")}))) == 1

    await eventually(job_counted, what="the welcome mail counted on the worker's endpoint")
    runs = after[("shopkeeper_jobs_run_total", dispatch)]
    assert runs >= 1
    assert after[("shopkeeper_job_duration_seconds_count", dispatch)] == runs
    assert after.get(("shopkeeper_jobs_failed_total", dispatch), 0) == 0
    assert after[("shopkeeper_outbox_published_total", frozenset())] >= 1
