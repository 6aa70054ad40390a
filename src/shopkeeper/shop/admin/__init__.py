"""The admin UI at `/admin` (sqladmin over the same models and database as the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import structlog
from fastapi import FastAPI
from sqladmin import Admin
from sqladmin.audit import AuditBackend, AuditEntry
from sqladmin.authentication import get_current_user_id, login_required
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from shopkeeper.shop.admin.auth import StaffAuthentication
from shopkeeper.shop.admin.competitors import CompetitorPriceAdmin
from shopkeeper.shop.admin.pages import add_shop_pages
from shopkeeper.shop.admin.views import OutboxEventAdmin, UserAdmin, domain_views

ADMIN_PATH = "/admin"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "admin"

audit_log = structlog.get_logger("shopkeeper.shop.admin.audit")


class RuntimeSessions:
    """Stands in for a sessionmaker: the runtime (and its engine) only exists once the lifespan
    has started, after the admin is mounted, so sessions come from it at call time. sqladmin's
    own session options stay here instead of being pushed onto the shared sessionmaker."""

    class_ = AsyncSession

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.options: dict[str, Any] = {}

    def configure(self, **options: Any) -> None:
        options.pop("autocommit", None)  # not a SQLAlchemy 2 session option
        self.options.update(options)

    def runtime(self) -> Runtime:
        runtime: Runtime = self.app.state.runtime
        return runtime

    def __call__(self, **options: Any) -> AsyncSession:
        return self.runtime().db.sessionmaker(**{**self.options, **options})


class StructlogAudit(AuditBackend):
    """Every admin write goes to the log with the staff user who made it."""

    async def log(self, entry: AuditEntry, request: Request) -> None:
        audit_log.info(
            "admin_change",
            action=entry.action,
            view=entry.identity,
            pk=entry.pk,
            fields=sorted(entry.changes or {}),
            staff_user_id=get_current_user_id(request),
        )


class AdminRouteLabel:
    """Names admin requests "/admin/{identity}/list" rather than the mounted app's bare
    "/{identity}/list", so request metrics do not mix admin pages with API routes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", "")
            scope["shopkeeper.route"] = ADMIN_PATH + str(route)


class ShopAdmin(Admin):
    """sqladmin with the shop's day as its home page."""

    @login_required
    async def index(self, request: Request) -> Response:
        return RedirectResponse(request.url_for("admin:view-today"), status_code=302)


def mount_admin(app: FastAPI, settings: Settings) -> Admin:
    sessions = RuntimeSessions(app)
    authentication = StaffAuthentication(settings, sessions.runtime)
    admin = ShopAdmin(
        app,
        session_maker=cast(async_sessionmaker[AsyncSession], sessions),
        base_url=ADMIN_PATH,
        title="shopkeeper admin",
        middlewares=[Middleware(AdminRouteLabel)],
        authentication_backend=authentication,
        audit_backend=StructlogAudit(),
        templates_dir=str(TEMPLATES),
    )
    authentication.admin = admin
    add_shop_pages(admin)
    admin.add_view(UserAdmin)
    views, _missing = domain_views()
    for view in views:
        admin.add_view(view)
    admin.add_view(CompetitorPriceAdmin)
    admin.add_view(OutboxEventAdmin)
    app.state.admin = admin
    # The admin's own Starlette app is what its views see as `request.app`; they reach the
    # process runtime (its realtime hub) through this.
    admin.admin.state.runtime_of = sessions.runtime
    return admin
