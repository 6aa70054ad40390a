"""What an alert's transitions tell the outbox; handlers turn them into notifications."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class AlertStatusChanged:
    """An alert started firing (`status` "firing") or resolved ("resolved"). It carries the
    rule as it was, so a notification says what fired even if the rule changed since."""

    alert_id: uuid.UUID
    transition_id: uuid.UUID
    tenant: str
    name: str
    status: str
    query: str
    op: str
    threshold: float
    value: float | None
    starts_at: datetime
    ends_at: datetime | None
    labels: dict[str, str] = field(default_factory=dict)
    notify: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class AlertWebhookQueued:
    """One webhook call of one transition: its own event, so a failing receiver is retried
    without calling the others again."""

    transition_id: uuid.UUID
    url: str
    alert: AlertStatusChanged
