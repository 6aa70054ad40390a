"""Alert rules: create, read, change, delete, and their history. Each function is one unit of
work on the caller's session and commits it; every read is bounded by the caller's tenant (an
alert of another tenant is 404)."""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from shopkeeper.core.db import utcnow
from shopkeeper.core.errors import InvalidInput, NotFound
from shopkeeper.logs.alerts.models import AlertRule, AlertTransition
from shopkeeper.logs.alerts.schemas import AlertCreate, AlertUpdate
from shopkeeper.logs.query import ast
from shopkeeper.logs.query.errors import QueryError
from shopkeeper.logs.query.lexer import parse_duration_seconds
from shopkeeper.logs.query.parser import parse


class AlertNotFound(NotFound):
    slug, title = "alert-not-found", "Alert not found"


class InvalidAlertQuery(InvalidInput):
    slug, title = "invalid-alert-query", "Invalid alert query"


class InvalidCursor(InvalidInput):
    slug, title = "invalid-cursor", "Invalid cursor"


def check_metric_query(query: str) -> None:
    """An alert's query must be a LogQL metric query the engine understands."""
    try:
        expr = parse(query)
    except QueryError as exc:
        errors = [{"loc": ["body", "query"], "msg": str(exc)}]
        raise InvalidAlertQuery(str(exc), errors=errors) from exc
    if isinstance(expr, ast.LogQuery):
        message = "an alert needs a metric query, such as count_over_time({...}[5m])"
        raise InvalidAlertQuery(message, errors=[{"loc": ["body", "query"], "msg": message}])


def _seconds(duration: str) -> float:
    seconds = parse_duration_seconds(duration)
    assert seconds is not None  # the schema validated it
    return seconds


async def create_alert(session: AsyncSession, *, tenant: str, body: AlertCreate) -> AlertRule:
    check_metric_query(body.query)
    now = utcnow()
    rule = AlertRule(
        tenant=tenant,
        name=body.name,
        query=body.query,
        op=body.op,
        threshold=body.threshold,
        for_=body.for_,
        for_seconds=_seconds(body.for_),
        every=body.every,
        every_seconds=_seconds(body.every),
        labels=dict(body.labels),
        notify=[target.model_dump(mode="json") for target in body.notify],
        state="inactive",
        next_evaluation_at=now,
        version=1,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    await session.commit()
    return rule


async def list_alerts(
    session: AsyncSession, *, tenant: str, limit: int = 20, cursor: str | None = None
) -> tuple[list[AlertRule], str | None]:
    """The tenant's alerts, oldest first, a page at a time."""
    query = select(AlertRule).where(AlertRule.tenant == tenant)
    if cursor is not None:
        query = query.where(AlertRule.id > _decode_cursor(cursor))
    rules = list((await session.scalars(query.order_by(AlertRule.id).limit(limit + 1))).all())
    page = rules[:limit]
    return page, _encode_cursor(page[-1].id) if len(rules) > limit else None


async def get_alert(session: AsyncSession, *, tenant: str, alert_id: uuid.UUID) -> AlertRule:
    rule = await session.scalar(
        select(AlertRule).where(AlertRule.id == alert_id, AlertRule.tenant == tenant)
    )
    if rule is None:
        raise AlertNotFound(f"No alert {alert_id}")
    return rule


async def update_alert(
    session: AsyncSession, *, tenant: str, alert_id: uuid.UUID, body: AlertUpdate
) -> AlertRule:
    """Change a rule. It applies from the next evaluation: an evaluation running now with the
    old rule has its result dropped (the version moves), and the rule is due at once."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, by_alias=False)
    if body.query is not None:
        check_metric_query(body.query)
    rule = await get_alert(session, tenant=tenant, alert_id=alert_id)
    for field in ("name", "query", "op", "threshold", "labels"):
        if changes.get(field) is not None:
            setattr(rule, field, changes[field])
    if body.for_ is not None:
        rule.for_, rule.for_seconds = body.for_, _seconds(body.for_)
    if body.every is not None:
        rule.every, rule.every_seconds = body.every, _seconds(body.every)
    if body.notify is not None:
        rule.notify = [target.model_dump(mode="json") for target in body.notify]
    now = utcnow()
    rule.version = AlertRule.version + 1
    rule.updated_at = now
    rule.next_evaluation_at = now
    await session.commit()
    await session.refresh(rule)
    return rule


async def delete_alert(session: AsyncSession, *, tenant: str, alert_id: uuid.UUID) -> None:
    await get_alert(session, tenant=tenant, alert_id=alert_id)
    await session.execute(delete(AlertTransition).where(AlertTransition.alert_id == alert_id))
    await session.execute(
        delete(AlertRule).where(AlertRule.id == alert_id, AlertRule.tenant == tenant)
    )
    await session.commit()


async def alert_history(
    session: AsyncSession,
    *,
    tenant: str,
    alert_id: uuid.UUID,
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[AlertTransition], str | None]:
    """The alert's transitions, newest first, a page at a time."""
    await get_alert(session, tenant=tenant, alert_id=alert_id)
    query = select(AlertTransition).where(AlertTransition.alert_id == alert_id)
    if cursor is not None:
        query = query.where(AlertTransition.id < _decode_cursor(cursor))
    rows = list(
        (await session.scalars(query.order_by(AlertTransition.id.desc()).limit(limit + 1))).all()
    )
    page = rows[:limit]
    return page, _encode_cursor(page[-1].id) if len(rows) > limit else None


def _encode_cursor(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def _decode_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("The cursor is not one this endpoint returned") from exc
