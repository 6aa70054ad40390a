"""The alert pages of the logs UI: every alert of the viewer's tenant with its state (the list
refreshes itself), and one alert's rule and history of transitions."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from shopkeeper.core.db import Session
from shopkeeper.logs.alerts import service
from shopkeeper.logs.ui.auth import CurrentViewer
from shopkeeper.logs.ui.templates import page

router = APIRouter(prefix="/logs/alerts", include_in_schema=False)

PAGE = 100


@router.get("", response_class=HTMLResponse)
async def alert_list(request: Request, session: Session, viewer: CurrentViewer) -> Response:
    alerts, cursor = await service.list_alerts(session, tenant=viewer.tenant, limit=PAGE)
    while cursor is not None and len(alerts) < 10 * PAGE:
        more, cursor = await service.list_alerts(
            session, tenant=viewer.tenant, limit=PAGE, cursor=cursor
        )
        alerts += more
    order = {"firing": 0, "pending": 1, "inactive": 2}
    alerts.sort(key=lambda alert: (order.get(alert.state, 3), alert.name))
    context: dict[str, Any] = {"viewer": viewer, "alerts": alerts}
    if request.headers.get("hx-request"):  # the list's own refresh
        return page(request, "logs/_alerts_table.html", context)
    return page(request, "logs/alerts.html", context)


@router.get("/{alert_id}", response_class=HTMLResponse)
async def alert_detail(
    request: Request, alert_id: uuid.UUID, session: Session, viewer: CurrentViewer
) -> Response:
    alert = await service.get_alert(session, tenant=viewer.tenant, alert_id=alert_id)
    history, _ = await service.alert_history(
        session, tenant=viewer.tenant, alert_id=alert_id, limit=PAGE
    )
    return page(request, "logs/alert.html", {"viewer": viewer, "alert": alert, "history": history})
