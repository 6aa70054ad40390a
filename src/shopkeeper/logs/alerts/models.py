"""Alert rules, their evaluation state and the history of their transitions (SQL, not ClickHouse:
a transition and its notification event commit in one transaction)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from shopkeeper.core.db import Base, JSONDocument, UTCDateTime, new_id, utcnow

STATES = ("inactive", "pending", "firing")


class AlertRule(Base):
    __tablename__ = "logs_alert_rules"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    tenant: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    query: Mapped[str] = mapped_column(Text)
    op: Mapped[str] = mapped_column(String(2))
    threshold: Mapped[float] = mapped_column(Float)
    for_: Mapped[str] = mapped_column("for_duration", String(32))
    """The rule's `for` as given ("5m"); `for_seconds` is what evaluation compares."""
    for_seconds: Mapped[float] = mapped_column(Float)
    every: Mapped[str] = mapped_column(String(32))
    every_seconds: Mapped[float] = mapped_column(Float)
    labels: Mapped[dict[str, str]] = mapped_column(JSONDocument, default=dict)
    notify: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)

    state: Mapped[str] = mapped_column(String(16), default="inactive")
    active_since: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    """When the condition started holding (pending, then firing); null while inactive."""
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None)
    last_value: Mapped[float | None] = mapped_column(Float, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)

    next_evaluation_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    """A scheduler claims an evaluation by moving this forward with a conditional UPDATE."""
    claim: Mapped[uuid.UUID | None] = mapped_column(Uuid, default=None)
    """The token of the latest claim: only its holder may record that evaluation's result."""
    version: Mapped[int] = mapped_column(default=1)
    """Bumped by every change of the rule: a result computed with an older rule is dropped."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("state IN ('inactive', 'pending', 'firing')", name="state"),
        CheckConstraint("op IN ('>', '>=', '<', '<=')", name="op"),
        Index("ix_logs_alert_rules_due", "next_evaluation_at"),
        Index("ix_logs_alert_rules_tenant", "tenant", "id"),
    )


class AlertTransition(Base):
    """One change of an alert's state, kept for its history; `firing` and `resolved` ones are
    the ones notified."""

    __tablename__ = "logs_alert_transitions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    alert_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("logs_alert_rules.id", ondelete="CASCADE")
    )
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    """pending | firing | resolved | cancelled (pending that ended before `for` passed)."""
    value: Mapped[float | None] = mapped_column(Float, default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_logs_alert_transitions_alert", "alert_id", "id"),)
