"""Roles grant permissions to people; scoped API keys to machines (API.md, "Roles and API keys")."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Annotated, Any

import httpx
import jwt
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, Depends, FastAPI

from shopkeeper.accounts.permissions import require
from shopkeeper.app import create_app
from shopkeeper.core.db import utcnow
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.security import Actor
from shopkeeper.core.settings import Settings
from tests.conftest import TEST_SECRET, register_and_login

probe = APIRouter()


@probe.get("/probe/logs-read")
async def logs_read(actor: Annotated[Actor, Depends(require("logs:read"))]) -> Any:
    return {"tenant": actor.tenant, "key": actor.key_id is not None}


def _app_with_probe(runtime: Runtime) -> FastAPI:
    app = create_app(runtime=runtime)
    app.include_router(probe)
    return app


@pytest.fixture
async def probe_client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    app = _app_with_probe(runtime)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        yield client


def problem_slug(response: httpx.Response) -> str:
    return str(response.json()["type"]).rsplit("/", 1)[-1]


async def new_key(
    client: httpx.AsyncClient, admin: dict[str, str], scopes: list[str], tenant: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "shipper", "scopes": scopes}
    if tenant:
        body["tenant"] = tenant
    response = await client.post("/api/v1/keys", json=body, headers=admin)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_admin_grants_roles_and_unknown_roles_are_refused(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    email = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    headers = await register_and_login(client, email, "a-long-passphrase")
    me = (await client.get("/api/v1/users/me", headers=headers)).json()
    assert me["roles"] == [] and me["is_staff"] is False

    granted = await client.put(
        f"/api/v1/users/{me['id']}/roles", json={"roles": ["log_reader"]}, headers=staff_headers
    )
    assert granted.status_code == 200
    assert granted.json()["roles"] == ["log_reader"] and granted.json()["is_staff"] is True

    unknown = await client.put(
        f"/api/v1/users/{me['id']}/roles", json={"roles": ["wizard"]}, headers=staff_headers
    )
    assert unknown.status_code == 422 and problem_slug(unknown) == "unknown-role"


async def test_role_endpoints_need_an_admin(
    client: httpx.AsyncClient, customer_headers: dict[str, str]
) -> None:
    target = f"/api/v1/users/{uuid.uuid4()}/roles"
    assert (await client.put(target, json={"roles": []})).status_code == 401
    refused = await client.put(target, json={"roles": []}, headers=customer_headers)
    assert refused.status_code == 403 and problem_slug(refused) == "permission-denied"
    assert (await client.get("/api/v1/keys", headers=customer_headers)).status_code == 403


async def test_a_log_reader_is_not_shop_staff_and_a_role_change_arrives_at_refresh(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    email = f"reader-{uuid.uuid4().hex[:6]}@example.com"
    await register_and_login(client, email, "a-long-passphrase")
    pair = (
        await client.post(
            "/api/v1/auth/token", data={"username": email, "password": "a-long-passphrase"}
        )
    ).json()
    me = (
        await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
        )
    ).json()
    await client.put(
        f"/api/v1/users/{me['id']}/roles", json={"roles": ["log_reader"]}, headers=staff_headers
    )
    # The token issued before the change still has no permission at all.
    old = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.get("/api/v1/warehouses", headers=old)).status_code == 403

    refreshed = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    ).json()
    reader = {"Authorization": f"Bearer {refreshed['access_token']}"}
    denied = await client.get("/api/v1/warehouses", headers=reader)
    assert denied.status_code == 403 and problem_slug(denied) == "permission-denied"

    await client.put(
        f"/api/v1/users/{me['id']}/roles", json={"roles": ["shop_staff"]}, headers=staff_headers
    )
    again = (
        await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": refreshed["refresh_token"]}
        )
    ).json()
    shop_staff = {"Authorization": f"Bearer {again['access_token']}"}
    assert (await client.get("/api/v1/warehouses", headers=shop_staff)).status_code == 200


async def test_access_tokens_from_before_roles_keep_working(
    client: httpx.AsyncClient, staff_headers: dict[str, str], settings: Settings
) -> None:
    staff_id = (await client.get("/api/v1/users/me", headers=staff_headers)).json()["id"]
    now = utcnow()
    legacy = jwt.encode(
        {
            "sub": staff_id,
            "staff": True,
            "iat": now,
            "exp": now + timedelta(minutes=5),
            "iss": settings.jwt_issuer,
            "typ": "access",
        },
        TEST_SECRET,
        algorithm="HS256",
    )
    response = await client.get("/api/v1/warehouses", headers={"Authorization": f"Bearer {legacy}"})
    assert response.status_code == 200


async def test_a_key_is_shown_once_and_listed_without_its_secret(
    client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    created = await new_key(client, staff_headers, ["logs:write"], tenant="acme")
    assert created["key"].startswith("sk_") and created["tenant"] == "acme"
    listed = (await client.get("/api/v1/keys", headers=staff_headers)).json()
    mine = [item for item in listed["items"] if item["id"] == created["id"]]
    assert mine and "key" not in mine[0] and mine[0]["scopes"] == ["logs:write"]

    unknown = await client.post(
        "/api/v1/keys", json={"name": "x", "scopes": ["logs:everything"]}, headers=staff_headers
    )
    assert unknown.status_code == 422 and problem_slug(unknown) == "unknown-scope"


async def test_keys_work_the_ways_shippers_send_them(
    client: httpx.AsyncClient, probe_client: httpx.AsyncClient, staff_headers: dict[str, str]
) -> None:
    created = await new_key(client, staff_headers, ["logs:read"], tenant="acme")
    key = created["key"]
    encoded_pair = base64.b64encode(f"{created['id']}:{key}".encode()).decode()
    for authorization in (
        f"Bearer {key}",
        "Basic " + base64.b64encode(f"vector:{key}".encode()).decode(),
        f"ApiKey {key}",
        f"ApiKey {encoded_pair}",  # the Elasticsearch clients' `api_key=(id, key)`
    ):
        response = await probe_client.get(
            "/probe/logs-read", headers={"Authorization": authorization}
        )
        assert response.status_code == 200, authorization
        assert response.json() == {"tenant": "acme", "key": True}


async def test_a_key_can_do_only_what_its_scopes_say(
    client: httpx.AsyncClient,
    probe_client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    customer_headers: dict[str, str],
) -> None:
    writer = await new_key(client, staff_headers, ["logs:write"])
    denied = await probe_client.get(
        "/probe/logs-read", headers={"Authorization": f"Bearer {writer['key']}"}
    )
    assert denied.status_code == 403 and problem_slug(denied) == "permission-denied"
    # Nor can a customer, nor anyone without credentials, nor a made-up key.
    assert (await probe_client.get("/probe/logs-read", headers=customer_headers)).status_code == 403
    assert (await probe_client.get("/probe/logs-read")).status_code == 401
    forged = await probe_client.get(
        "/probe/logs-read", headers={"Authorization": "Bearer sk_not-a-key"}
    )
    assert forged.status_code == 401 and problem_slug(forged) == "invalid-api-key"
    # A key is not a way into endpoints that act for a person.
    reader = await new_key(client, staff_headers, ["shop:read"])
    person_only = await client.get(
        "/api/v1/warehouses", headers={"Authorization": f"Bearer {reader['key']}"}
    )
    assert person_only.status_code == 401


async def test_revoking_a_key_stops_it_at_once_on_every_process(
    client: httpx.AsyncClient,
    staff_headers: dict[str, str],
    settings: Settings,
) -> None:
    created = await new_key(client, staff_headers, ["logs:read"])
    auth = {"Authorization": f"Bearer {created['key']}"}
    # A second process: its own runtime (pool, caches) on the same database.
    other = Runtime.build(settings)
    other_app = _app_with_probe(other)
    async with (
        LifespanManager(other_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=other_app), base_url="http://other"
        ) as other_client,
    ):
        assert (await other_client.get("/probe/logs-read", headers=auth)).status_code == 200
        revoked = await client.delete(f"/api/v1/keys/{created['id']}", headers=staff_headers)
        assert revoked.status_code == 204
        assert (await other_client.get("/probe/logs-read", headers=auth)).status_code == 401
    again = await client.delete(f"/api/v1/keys/{created['id']}", headers=staff_headers)
    assert again.status_code == 404 and problem_slug(again) == "api-key-not-found"
