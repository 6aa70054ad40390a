"""Today: orders, revenue, payments waiting for a decision and stock running low, kept live by
the staff WebSocket channel (`/api/v1/ws/admin`: order.created, order.paid, stock.low)."""

from __future__ import annotations

from sqladmin import expose
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shopkeeper.core.security import create_access_token
from shopkeeper.shop.admin.pages import queries
from shopkeeper.shop.admin.pages.common import ShopPage, runtime_of, staff_of


class TodayPage(ShopPage):
    name = "Today"
    icon = "fa-solid fa-gauge"
    identity = "today"

    @expose("/shop/today", identity="today")
    async def today(self, request: Request) -> Response:
        return await self.render(
            request, "shop/today.html", today=await self._today(request), title="Today"
        )

    @expose("/shop/today/stats", identity="today-stats")
    async def stats(self, request: Request) -> Response:
        """The figures alone, which the page fetches again when the channel says so."""
        return await self.render(
            request, "shop/_today_stats.html", today=await self._today(request)
        )

    @expose("/shop/today/token", identity="today-token")
    async def token(self, request: Request) -> Response:
        """A short-lived access token for `/api/v1/ws/admin`, minted for the signed-in staff
        user: the page's live channel is the API's own, with the API's authorisation."""
        runtime = runtime_of(request)
        staff = staff_of(request)
        token = create_access_token(
            settings=runtime.settings,
            user_id=staff.user_id,
            permissions=staff.permissions,
        )
        return JSONResponse({"token": token}, headers={"Cache-Control": "no-store"})

    async def _today(self, request: Request) -> queries.Today:
        runtime = runtime_of(request)
        async with runtime.db.session() as session:
            return await queries.today(
                session, default_threshold=runtime.settings.stock_low_threshold
            )
