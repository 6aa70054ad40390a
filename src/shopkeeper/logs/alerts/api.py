"""The alerts API under `/api/v1/logs/alerts`: reading needs `logs:read`, changing `logs:admin`;
a caller sees only the alerts of its own tenant."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from shopkeeper.accounts.permissions import permission
from shopkeeper.core.db import Session
from shopkeeper.core.errors import problem_responses
from shopkeeper.core.security import Actor
from shopkeeper.logs.alerts import service
from shopkeeper.logs.alerts.models import AlertRule, AlertTransition
from shopkeeper.logs.alerts.schemas import (
    AlertCreate,
    AlertOut,
    AlertPage,
    AlertUpdate,
    TransitionOut,
    TransitionPage,
)

router = APIRouter(prefix="/alerts", tags=["logs"])

AlertReader = Annotated[Actor, permission("logs:read")]
AlertAdmin = Annotated[Actor, permission("logs:admin")]
Limit = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=200)]

AUTH = (401, 403)
BAD_QUERY = "`invalid-alert-query`: not a LogQL metric query; `validation-error`: a bad field"


def alert_out(rule: AlertRule) -> AlertOut:
    return AlertOut.model_validate(
        {
            "id": rule.id,
            "name": rule.name,
            "query": rule.query,
            "op": rule.op,
            "threshold": rule.threshold,
            "for": rule.for_,
            "every": rule.every,
            "labels": rule.labels,
            "notify": rule.notify,
            "state": rule.state,
            "last_evaluated_at": rule.last_evaluated_at,
            "last_value": rule.last_value,
            "last_error": rule.last_error,
            "active_since": rule.active_since,
            "created_at": rule.created_at,
            "updated_at": rule.updated_at,
        }
    )


def transition_out(row: AlertTransition) -> TransitionOut:
    return TransitionOut.model_validate(row, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(*AUTH, 422, s422=BAD_QUERY),
)
async def create_alert(body: AlertCreate, session: Session, actor: AlertAdmin) -> AlertOut:
    """Create an alert rule; schedulers evaluate it every `every`."""
    return alert_out(await service.create_alert(session, tenant=actor.tenant, body=body))


@router.get("", responses=problem_responses(*AUTH, 422, s422="`invalid-cursor`"))
async def list_alerts(
    session: Session, actor: AlertReader, limit: Limit = 20, cursor: Cursor = None
) -> AlertPage:
    rules, next_cursor = await service.list_alerts(
        session, tenant=actor.tenant, limit=limit, cursor=cursor
    )
    return AlertPage(items=[alert_out(rule) for rule in rules], next_cursor=next_cursor)


@router.get("/{alert_id}", responses=problem_responses(*AUTH, 404, s404="`alert-not-found`"))
async def get_alert(alert_id: uuid.UUID, session: Session, actor: AlertReader) -> AlertOut:
    return alert_out(await service.get_alert(session, tenant=actor.tenant, alert_id=alert_id))


@router.patch(
    "/{alert_id}",
    responses=problem_responses(*AUTH, 404, 422, s404="`alert-not-found`", s422=BAD_QUERY),
)
async def update_alert(
    alert_id: uuid.UUID, body: AlertUpdate, session: Session, actor: AlertAdmin
) -> AlertOut:
    """Change a rule; the change applies from its next evaluation."""
    rule = await service.update_alert(session, tenant=actor.tenant, alert_id=alert_id, body=body)
    return alert_out(rule)


@router.delete(
    "/{alert_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(*AUTH, 404, s404="`alert-not-found`"),
)
async def delete_alert(alert_id: uuid.UUID, session: Session, actor: AlertAdmin) -> Response:
    await service.delete_alert(session, tenant=actor.tenant, alert_id=alert_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{alert_id}/history",
    responses=problem_responses(*AUTH, 404, 422, s404="`alert-not-found`", s422="`invalid-cursor`"),
)
async def alert_history(
    alert_id: uuid.UUID,
    session: Session,
    actor: AlertReader,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> TransitionPage:
    """The alert's transitions (pending, firing, resolved, cancelled), newest first."""
    rows, next_cursor = await service.alert_history(
        session, tenant=actor.tenant, alert_id=alert_id, limit=limit, cursor=cursor
    )
    return TransitionPage(items=[transition_out(row) for row in rows], next_cursor=next_cursor)
