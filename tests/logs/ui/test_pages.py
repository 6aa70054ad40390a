"""The logs UI's pages over HTTP: signing in with a form and a cookie (the `log_reader` role),
the search with its histogram and lines, a line's context, label suggestions, saved searches."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from shopkeeper.core.settings import Settings
from shopkeeper.logs.records import LogRecord
from shopkeeper.logs.store import LogStore, records_batch
from tests.logs.ui.conftest import make_user, sign_in

NS = 1_000_000_000


@pytest.fixture
async def browser_like(logs_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=logs_app), base_url="http://test"
    ) as http:
        yield http


@pytest.fixture
async def reader(browser_like: httpx.AsyncClient, logs_settings: Settings) -> httpx.AsyncClient:
    email = await make_user(logs_settings, "log_reader")
    answer = await sign_in(browser_like, email)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/logs"
    return browser_like


async def test_pages_need_a_signed_in_log_reader(
    browser_like: httpx.AsyncClient, logs_settings: Settings
) -> None:
    answer = await browser_like.get("/logs?query=%7Bservice%3D%22x%22%7D")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/logs/login?next=/logs%3Fquery%3D")
    fragment = await browser_like.get("/logs/search", headers={"HX-Request": "true"})
    assert fragment.status_code == 401
    assert fragment.headers["HX-Redirect"] == "/logs/login"

    shop_staff = await make_user(logs_settings, "shop_staff")
    refused = await sign_in(browser_like, shop_staff)
    assert refused.status_code == 401
    assert "may not read logs" in refused.text
    wrong = await sign_in(browser_like, await make_user(logs_settings, "log_reader"), "nope")
    assert wrong.status_code == 401
    assert "shopkeeper_logs" not in browser_like.cookies

    alerts = await browser_like.get("/logs/alerts")
    assert alerts.status_code == 303

    forged = await browser_like.get("/logs", cookies={"shopkeeper_logs": "forged.value.x"})
    assert forged.status_code == 303


async def test_the_search_shows_matching_lines_a_histogram_and_context(
    reader: httpx.AsyncClient, log_store: LogStore
) -> None:
    # Signed-in users read tenant `default`; this test's lines carry their own service.
    service = f"ui-{time.time_ns()}"
    now = time.time_ns()
    records = [
        LogRecord(
            message=f"request {n} {'failed' if n % 5 == 0 else 'ok'}",
            timestamp_ns=now - (30 - n) * NS,
            service=service,
            level="error" if n % 5 == 0 else "info",
            attributes={"http.status": "500" if n % 5 == 0 else "200"},
        )
        for n in range(30)
    ]
    await log_store.insert(records_batch(records, tenant="default", source="ndjson"))

    page = await reader.get("/logs", params={"query": f'{{service="{service}"}} |= "failed"'})
    assert page.status_code == 200
    assert "<strong>6</strong> matching lines" in page.text
    messages = re.findall(r'<span class="message">([^<]*)</span>', page.text)
    assert messages == [f"request {n} failed" for n in (25, 20, 15, 10, 5, 0)]
    assert 'class="line level-error"' in page.text
    assert "<th>http_status</th><td>500</td>" in page.text
    histogram = json.loads(
        re.search(r"data-histogram='([^']*)'", page.text).group(1).replace("&#34;", '"')  # type: ignore[union-attr]
    )
    assert sum(count for _, count in histogram["points"]) == 6

    # The window picked by from/to (a zoom) narrows lines and histogram alike.
    start, end = now - 16 * NS, now - 4 * NS
    zoomed = await reader.get(
        "/logs/search",
        params={"query": f'{{service="{service}"}}', "from": str(start), "to": str(end)},
    )
    assert re.findall(r'<span class="message">request (\d+)', zoomed.text) == [
        str(n) for n in range(25, 13, -1)
    ]

    context = await reader.get(
        "/logs/context",
        params={
            "ts": str(records[15].timestamp_ns),
            "stream": json.dumps({"service": service, "level": "error", "source": "ndjson"}),
        },
    )
    assert context.status_code == 200
    # The lines of the same stream around it, newest first, the line itself marked.
    shown = re.findall(r'<span class="message">request (\d+)', context.text)
    assert shown == ["25", "20", "15", "10", "5", "0"]
    assert re.search(
        r'class="line level-error here">\s*<time>[^<]*</time> <span class="level">'
        r'error</span> <span class="message">request 15 ',
        context.text,
    )

    bad = await reader.get("/logs/search", params={"query": "{service="})
    assert 'class="error"' in bad.text
    too_long = await reader.get(
        "/logs/search",
        params={"query": '{service="x"}', "from": "2020-01-01T00:00:00", "to": "2021-01-01"},
    )
    assert "longer than SHOPKEEPER_LOGS_MAX_QUERY_RANGE" in too_long.text

    names = (await reader.get("/logs/labels")).json()
    assert {"service", "level", "source"} <= set(names)
    values = (await reader.get("/logs/labels/service/values")).json()
    assert service in values


async def test_saved_searches_belong_to_their_user(
    reader: httpx.AsyncClient, logs_app: FastAPI, logs_settings: Settings
) -> None:
    saved = await reader.post(
        "/logs/saved", data={"name": "errors", "query": '{level="error"}', "range": "15m"}
    )
    assert saved.status_code == 200
    assert ">errors</a>" in saved.text
    again = await reader.post(
        "/logs/saved", data={"name": "errors", "query": '{level="fatal"}', "range": "1h"}
    )
    assert again.text.count(">errors</a>") == 1
    assert "%7Blevel%3D%22fatal%22%7D" in again.text
    invalid = await reader.post("/logs/saved", data={"name": " ", "query": '{a="b"}'})
    assert invalid.status_code == 422

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=logs_app), base_url="http://test"
    ) as other:
        await sign_in(other, await make_user(logs_settings, "log_reader"))
        theirs = await other.get("/logs")
        assert ">errors</a>" not in theirs.text
        search_id = re.search(r"/logs/saved/([0-9a-f-]+)/delete", again.text).group(1)  # type: ignore[union-attr]
        assert (await other.post(f"/logs/saved/{search_id}/delete")).status_code == 404

    deleted = await reader.post(f"/logs/saved/{search_id}/delete")
    assert ">errors</a>" not in deleted.text


async def test_a_role_taken_away_ends_the_session_at_once(
    browser_like: httpx.AsyncClient, logs_settings: Settings
) -> None:
    from shopkeeper.accounts import service as accounts
    from shopkeeper.accounts.models import User
    from shopkeeper.core.db import Database

    email = await make_user(logs_settings, "log_reader")
    assert (await sign_in(browser_like, email)).status_code == 303
    assert (await browser_like.get("/logs/labels")).status_code == 200
    database = Database(logs_settings)
    try:
        async with database.session() as session:
            user = await session.scalar(select(User).where(User.email == email))
            assert user is not None
            await accounts.set_user_roles(session, user_id=user.id, roles=["shop_staff"])
    finally:
        await database.dispose()
    assert (await browser_like.get("/logs/labels")).status_code == 303
