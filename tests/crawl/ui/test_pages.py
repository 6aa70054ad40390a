"""The crawl UI's sign-in and permissions over HTTP, on SQLite and PostgreSQL: `crawl:read`
signs in, `crawl:write` acts, every action route refuses a reader (403), and the logs' session
is not the crawl's."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings
from tests.crawl.domain.conftest import api_key
from tests.crawl.ui.conftest import make_user, sign_in

ID = uuid.uuid4()
ACTIONS = [
    f"/crawl/crawls/{ID}/pause",
    f"/crawl/crawls/{ID}/resume",
    f"/crawl/crawls/{ID}/cancel",
    f"/crawl/jobs/{ID}/cancel",
    f"/crawl/jobs/{ID}/retry",
    f"/crawl/schedules/{ID}/enable",
    f"/crawl/schedules/{ID}/disable",
    "/crawl/spiders/sleeper/run",
    f"/crawl/watches/{ID}/check",
]


async def test_only_users_who_may_read_crawls_sign_in(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    staff = await make_user(settings, "shop_staff")
    refused = await sign_in(client, staff)
    assert refused.status_code == 401 and "may not read crawls" in refused.text
    assert "shopkeeper_crawl" not in client.cookies

    viewer = await make_user(settings, "crawl_viewer")
    signed = await sign_in(client, viewer)
    assert signed.status_code == 303 and signed.headers["location"] == "/crawl"
    page = await client.get("/crawl")
    assert page.status_code == 200 and viewer in page.text and "read-only" in page.text


async def test_without_a_session_pages_redirect_and_htmx_is_told_to(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/crawl/jobs?status=failed")
    assert page.status_code == 303
    assert page.headers["location"] == "/crawl/login?next=/crawl/jobs%3Fstatus%3Dfailed"
    fragment = await client.get("/crawl/_crawls", headers={"HX-Request": "true"})
    assert fragment.status_code == 401 and fragment.headers["HX-Redirect"] == "/crawl/login"
    assert (await client.post(ACTIONS[0])).status_code == 303


@pytest.mark.parametrize("path", ACTIONS)
async def test_a_reader_is_refused_every_action(
    client: httpx.AsyncClient, settings: Settings, path: str
) -> None:
    await sign_in(client, await make_user(settings, "crawl_viewer"))
    answer = await client.post(path)
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith("permission-denied")


async def test_an_operator_acting_on_a_missing_crawl_gets_a_404(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await sign_in(client, await make_user(settings, "crawl_operator"))
    assert (await client.post(f"/crawl/crawls/{ID}/pause")).status_code == 404
    assert (await client.get(f"/crawl/crawls/{ID}")).status_code == 404


async def test_sign_in_never_redirects_off_the_crawl_ui(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    email = await make_user(settings, "crawl_operator")
    for target in ("https://evil.example/crawl", "//evil.example", "/logs"):
        answer = await client.post(
            "/crawl/login",
            data={"email": email, "password": "crawl-ui-password-1", "next": target},
        )
        assert answer.status_code == 303 and answer.headers["location"] == "/crawl"


async def test_signing_out_ends_the_session(client: httpx.AsyncClient, settings: Settings) -> None:
    await sign_in(client, await make_user(settings, "crawl_operator"))
    assert (await client.get("/crawl/workers")).status_code == 200
    out = await client.post("/crawl/logout")
    assert out.status_code == 303 and out.headers["location"] == "/crawl/login"
    assert (await client.get("/crawl/workers")).status_code == 303


async def test_an_action_the_crawl_cannot_take_shows_why_once(
    client: httpx.AsyncClient, settings: Settings, runtime: Runtime
) -> None:
    headers = await api_key(runtime, "crawl:read", "crawl:write")
    created = await client.post(
        "/api/v1/crawl/crawls",
        headers=headers,
        json={
            "name": "ended",
            "seeds": ["http://127.0.0.1:9/"],
            "scope": {"allow": ["127.0.0.1:9"]},
        },
    )
    assert created.status_code == 201, created.text
    crawl_id = created.json()["id"]
    await sign_in(client, await make_user(settings, "crawl_operator"))

    cancelled = await client.post(f"/crawl/crawls/{crawl_id}/cancel")
    assert cancelled.status_code == 303
    assert cancelled.headers["location"] == f"/crawl/crawls/{crawl_id}"
    crawl = await client.get(f"/api/v1/crawl/crawls/{crawl_id}", headers=headers)
    assert crawl.json()["status"] == "cancelled"

    refused = await client.post(f"/crawl/crawls/{crawl_id}/pause")
    assert refused.status_code == 303
    shown = await client.get(refused.headers["location"])
    assert 'role="alert"' in shown.text and "cancelled" in shown.text.split('id="flash"')[1][:200]
    assert 'id="flash"' not in (await client.get(f"/crawl/crawls/{crawl_id}")).text
    crawl = await client.get(f"/api/v1/crawl/crawls/{crawl_id}", headers=headers)
    assert crawl.json()["status"] == "cancelled"
