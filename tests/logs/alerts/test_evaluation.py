"""Evaluating alert rules against stored lines: the states a user sees, the history, and one
notification per firing and per resolution, by e-mail and by Alertmanager-style webhook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from shopkeeper.core.db import Database
from shopkeeper.core.messaging.events import OutboxEvent
from shopkeeper.core.runtime import Runtime
from shopkeeper.logs.alerts.evaluator import evaluate_due_alerts
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import LogStore, records_batch
from tests.logs.alerts.conftest import WEBHOOK_SECRET, KeyFactory, WebhookReceiver
from tests.support.events import drain_events
from tests.support.platform import SmtpSink

ALERTS = "/api/v1/logs/alerts"


async def store_lines(store: LogStore, tenant: str, messages: list[str]) -> None:
    now = time.time_ns()
    records = [
        LogRecord(message=text, timestamp_ns=now - n * 1000, service="checkout", level="error")
        for n, text in enumerate(messages)
    ]
    await store.insert(records_batch(records, tenant=tenant, source="ndjson"))


def rule(**overrides: Any) -> dict[str, Any]:
    return {
        "name": "checkout errors",
        "query": 'sum(count_over_time({service="checkout"} |= "failed" [1h]))',
        "op": ">",
        "threshold": 2,
        "for": "0s",
        "every": "1s",
        "labels": {"severity": "page", "team": "shop"},
        "notify": [],
        **overrides,
    }


async def evaluate_until(
    runtime: Runtime,
    store: LogStore,
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    state: str,
    timeout: float = 20,
) -> dict[str, Any]:
    """Run evaluations (as a scheduler's tick does) until the alert shows `state`."""
    deadline = time.monotonic() + timeout
    while True:
        await evaluate_due_alerts(runtime.db, store)
        alert: dict[str, Any] = (await client.get(url, headers=headers)).json()
        if alert["state"] == state:
            return alert
        if time.monotonic() > deadline:
            raise AssertionError(f"alert stayed {alert['state']}, expected {state}: {alert}")
        await asyncio.sleep(0.1)


async def history(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> list[str]:
    page = (await client.get(f"{url}/history", headers=headers)).json()
    return [item["kind"] for item in reversed(page["items"])]


async def test_an_alert_fires_and_resolves_with_one_notification_each(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
    smtp_server: SmtpSink,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    notify = [
        {"type": "email", "to": "oncall@example.com"},
        {"type": "webhook", "url": webhook_receiver.url},
    ]
    created = await alerts_client.post(ALERTS, json=rule(notify=notify), headers=admin)
    url = f"{ALERTS}/{created.json()['id']}"
    await store_lines(log_store, tenant, ["payment failed", "charge failed", "sync failed", "ok"])

    firing = await evaluate_until(alerts_runtime, log_store, alerts_client, url, admin, "firing")
    assert firing["last_value"] == 3
    assert firing["active_since"] is not None
    await drain_events(alerts_runtime)
    # Evaluated again while it still holds: no new transition, no new notification.
    await asyncio.sleep(1.1)
    await evaluate_due_alerts(alerts_runtime.db, log_store)
    await drain_events(alerts_runtime)
    assert [body["status"] for body in webhook_receiver.bodies()] == ["firing"]
    assert [mail["Subject"] for mail in smtp_server.messages] == ["[FIRING] checkout errors"]

    # A rule change applies at the next evaluation: with a higher threshold it resolves.
    await alerts_client.patch(url, json={"threshold": 5}, headers=admin)
    resolved = await evaluate_until(
        alerts_runtime, log_store, alerts_client, url, admin, "inactive"
    )
    assert resolved["last_value"] == 3 and resolved["active_since"] is None
    await drain_events(alerts_runtime)
    await drain_events(alerts_runtime)

    assert [body["status"] for body in webhook_receiver.bodies()] == ["firing", "resolved"]
    subjects = [mail["Subject"] for mail in smtp_server.messages]
    assert subjects == ["[FIRING] checkout errors", "[RESOLVED] checkout errors"]
    assert "sum(count_over_time" in smtp_server.messages[0].get_content()
    assert await history(alerts_client, url, admin) == ["firing", "resolved"]


async def test_webhooks_speak_alertmanagers_format_and_are_signed(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    notify = [{"type": "webhook", "url": webhook_receiver.url}]
    created = await alerts_client.post(ALERTS, json=rule(notify=notify), headers=admin)
    alert_id = created.json()["id"]
    await store_lines(log_store, tenant, ["a failed", "b failed", "c failed"])
    await evaluate_until(
        alerts_runtime, log_store, alerts_client, f"{ALERTS}/{alert_id}", admin, "firing"
    )
    await drain_events(alerts_runtime)

    [received] = webhook_receiver.received
    expected = hmac.new(WEBHOOK_SECRET.encode(), received.body, hashlib.sha256).hexdigest()
    assert received.headers["X-Shopkeeper-Signature"] == f"sha256={expected}"
    body = received.json()
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["groupLabels"] == {"alertname": "checkout errors"}
    [alert] = body["alerts"]
    assert alert["labels"] == {"alertname": "checkout errors", "severity": "page", "team": "shop"}
    assert alert["status"] == "firing"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["startsAt"].endswith("Z")
    assert alert["annotations"]["value"] == "3"
    assert alert_id in alert["generatorURL"]
    assert len(alert["fingerprint"]) == 16


async def test_for_keeps_an_alert_pending_until_the_condition_has_lasted(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    notify = [{"type": "webhook", "url": webhook_receiver.url}]
    created = await alerts_client.post(
        ALERTS, json=rule(notify=notify, **{"for": "2s"}), headers=admin
    )
    url = f"{ALERTS}/{created.json()['id']}"
    await store_lines(log_store, tenant, ["a failed", "b failed", "c failed"])

    pending = await evaluate_until(alerts_runtime, log_store, alerts_client, url, admin, "pending")
    await drain_events(alerts_runtime)
    assert webhook_receiver.received == []  # pending is not notified
    firing = await evaluate_until(alerts_runtime, log_store, alerts_client, url, admin, "firing")
    assert firing["active_since"] == pending["active_since"]
    await drain_events(alerts_runtime)
    assert [body["status"] for body in webhook_receiver.bodies()] == ["firing"]
    assert await history(alerts_client, url, admin) == ["pending", "firing"]


async def test_a_pending_alert_that_clears_goes_back_quietly(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    notify = [{"type": "webhook", "url": webhook_receiver.url}]
    created = await alerts_client.post(
        ALERTS, json=rule(notify=notify, **{"for": "1h"}), headers=admin
    )
    url = f"{ALERTS}/{created.json()['id']}"
    await store_lines(log_store, tenant, ["a failed", "b failed", "c failed"])
    await evaluate_until(alerts_runtime, log_store, alerts_client, url, admin, "pending")
    await alerts_client.patch(url, json={"op": "<"}, headers=admin)
    await evaluate_until(alerts_runtime, log_store, alerts_client, url, admin, "inactive")
    await drain_events(alerts_runtime)
    assert webhook_receiver.received == []
    assert await history(alerts_client, url, admin) == ["pending", "cancelled"]


async def test_no_data_is_a_null_value_and_does_not_fire(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    created = await alerts_client.post(ALERTS, json=rule(op="<", threshold=1), headers=admin)
    url = f"{ALERTS}/{created.json()['id']}"
    await evaluate_due_alerts(alerts_runtime.db, log_store)
    alert = (await alerts_client.get(url, headers=admin)).json()
    assert alert["state"] == "inactive"
    assert alert["last_evaluated_at"] is not None and alert["last_value"] is None


async def test_a_failing_webhook_is_retried_without_mailing_twice(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
    smtp_server: SmtpSink,
    webhook_receiver: WebhookReceiver,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    notify = [
        {"type": "email", "to": "oncall@example.com"},
        {"type": "webhook", "url": webhook_receiver.url},
    ]
    created = await alerts_client.post(ALERTS, json=rule(notify=notify), headers=admin)
    await store_lines(log_store, tenant, ["a failed", "b failed", "c failed"])
    url = f"{ALERTS}/{created.json()['id']}"
    await evaluate_until(alerts_runtime, log_store, alerts_client, url, admin, "firing")
    webhook_receiver.status = 503
    with pytest.raises(Exception, match="answered 503"):
        await drain_events(alerts_runtime)
    webhook_receiver.status = 200
    for _ in range(3):
        try:
            await drain_events(alerts_runtime)
        except Exception:  # the mail or webhook job that failed first is retried here
            continue
    assert [body["status"] for body in webhook_receiver.bodies()] == ["firing"]
    assert len(smtp_server.messages) == 1


async def test_concurrent_evaluators_evaluate_each_rule_once(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    for n in range(30):
        await alerts_client.post(
            ALERTS, json=rule(name=f"rule {n}", every="1h", **{"for": "0s"}), headers=admin
        )
    await store_lines(log_store, tenant, ["a failed", "b failed", "c failed"])
    # Eight evaluators, each with its own connections, as eight schedulers would be.
    databases = [Database(alerts_runtime.settings) for _ in range(8)]
    try:
        counts = await asyncio.gather(*(evaluate_due_alerts(db, log_store) for db in databases))
    finally:
        for db in databases:
            await db.dispose()
    assert sum(counts) == 30
    async with alerts_runtime.db.session() as session:
        events = await session.scalar(
            select(func.count()).where(OutboxEvent.name == "AlertStatusChanged")
        )
    assert events == 30
    page = (await alerts_client.get(ALERTS, params={"limit": 100}, headers=admin)).json()
    assert {item["state"] for item in page["items"]} == {"firing"}
    for item in page["items"]:
        assert await history(alerts_client, f"{ALERTS}/{item['id']}", admin) == ["firing"]


async def test_a_query_that_cannot_run_keeps_the_state_and_says_why(
    alerts_client: httpx.AsyncClient,
    alerts_runtime: Runtime,
    log_store: LogStore,
    key_headers: KeyFactory,
    tenant: str,
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    # One series per host: more than the engine's 500-series limit.
    now = time.time_ns()
    records = [
        LogRecord(message="failed", timestamp_ns=now - n, service="checkout", host=f"h{n}")
        for n in range(501)
    ]
    await log_store.insert(records_batch(records, tenant=tenant, source="ndjson"))
    created = await alerts_client.post(
        ALERTS,
        json=rule(query='count_over_time({service="checkout"}[1h])', threshold=0),
        headers=admin,
    )
    url = f"{ALERTS}/{created.json()['id']}"
    await evaluate_due_alerts(alerts_runtime.db, log_store)
    alert = (await alerts_client.get(url, headers=admin)).json()
    assert alert["state"] == "inactive"
    assert "maximum of series" in alert["last_error"]
    assert alert["last_evaluated_at"] is not None
    metrics = (await alerts_client.get("/metrics")).text
    assert 'shopkeeper_logs_alert_evaluations_total{outcome="error"}' in metrics
