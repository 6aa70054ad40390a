"""Notifications of alert transitions: e-mail through the mailer, webhooks in Prometheus
Alertmanager's webhook format (version 4), signed with HMAC-SHA256.

Both are queued in the dispatcher's transaction, which also records the event as handled: a
transition delivered twice queues its notifications once. Each webhook call is its own event,
retried until the receiver answers 2xx, without calling the other receivers again.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

import httpx
import orjson
import structlog
from prometheus_client import Counter

from shopkeeper.core.messaging.events import record_event
from shopkeeper.core.messaging.handlers import handles
from shopkeeper.core.runtime import HandlerContext
from shopkeeper.logs.alerts.events import AlertStatusChanged, AlertWebhookQueued

log = structlog.get_logger(__name__)

ALERT_NOTIFICATIONS = Counter(
    "shopkeeper_logs_alert_notifications_total",
    "Alert notifications queued (email) or delivered (webhook)",
    ["channel", "status"],
)

SIGNATURE_HEADER = "X-Shopkeeper-Signature"
WEBHOOK_TIMEOUT_SECONDS = 10.0
ALERTMANAGER_ZERO_TIME = "0001-01-01T00:00:00Z"


class WebhookRejected(RuntimeError):
    """The receiver did not answer 2xx: the job fails and is delivered again later."""


@handles(AlertStatusChanged)
async def notify_alert_status(ctx: HandlerContext, event: AlertStatusChanged) -> None:
    for target in event.notify:
        if target.get("type") == "email":
            await ctx.mailer.send(
                ctx.session, to=target["to"], template="logs_alert", context=_mail_context(event)
            )
            ALERT_NOTIFICATIONS.labels("email", event.status).inc()
        elif target.get("type") == "webhook":
            record_event(
                ctx.session,
                AlertWebhookQueued(
                    transition_id=event.transition_id, url=target["url"], alert=event
                ),
            )


@handles(AlertWebhookQueued)
async def deliver_alert_webhook(ctx: HandlerContext, event: AlertWebhookQueued) -> None:
    settings = ctx.runtime.settings
    body = orjson.dumps(alertmanager_payload(event.alert, external_url=settings.base_url))
    secret = settings.logs_alert_webhook_secret
    assert secret is not None  # settings fill it
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "shopkeeper-alerts",
        SIGNATURE_HEADER: sign(secret.get_secret_value(), body),
        "Idempotency-Key": str(event.transition_id),
    }
    async with httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECONDS) as client:
        answer = await client.post(event.url, content=body, headers=headers)
    if not answer.is_success:
        ALERT_NOTIFICATIONS.labels("webhook", "rejected").inc()
        raise WebhookRejected(f"{event.url} answered {answer.status_code}")
    ALERT_NOTIFICATIONS.labels("webhook", event.alert.status).inc()
    log.info("alert_webhook_sent", alert_id=str(event.alert.alert_id), status=event.alert.status)


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, as GitHub signs its webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def alertmanager_payload(alert: AlertStatusChanged, *, external_url: str) -> dict[str, Any]:
    """Alertmanager's webhook body (version 4), one alert per notification."""
    labels = {**alert.labels, "alertname": alert.name}
    annotations = {
        "summary": f"{alert.name} is {alert.status}",
        "description": f"{alert.query} {alert.op} {alert.threshold:g}",
        "value": "" if alert.value is None else f"{alert.value:g}",
    }
    return {
        "version": "4",
        "groupKey": "{}:{alertname=" + orjson.dumps(alert.name).decode() + "}",
        "truncatedAlerts": 0,
        "status": alert.status,
        "receiver": "shopkeeper",
        "groupLabels": {"alertname": alert.name},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": external_url,
        "alerts": [
            {
                "status": alert.status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": _rfc3339(alert.starts_at),
                "endsAt": _rfc3339(alert.ends_at) if alert.ends_at else ALERTMANAGER_ZERO_TIME,
                "generatorURL": f"{external_url}/logs/alerts/{alert.alert_id}",
                "fingerprint": _fingerprint(labels),
            }
        ],
    }


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _mail_context(event: AlertStatusChanged) -> dict[str, Any]:
    return {
        "name": event.name,
        "status": event.status,
        "query": event.query,
        "op": event.op,
        "threshold": f"{event.threshold:g}",
        "value": "no data" if event.value is None else f"{event.value:g}",
        "labels": event.labels,
        "starts_at": _rfc3339(event.starts_at),
        "ends_at": _rfc3339(event.ends_at) if event.ends_at else "",
    }
