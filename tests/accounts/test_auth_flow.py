from __future__ import annotations

import httpx

from tests.conftest import login, register_and_login


async def test_register_login_and_read_me(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/register",
        json={"email": "Ada@Example.com", "password": "analytical-1", "full_name": "Ada"},
    )
    assert response.status_code == 201
    user = response.json()
    assert user["email"] == "ada@example.com"
    assert user["is_staff"] is False
    assert user["created_at"].endswith("Z") or user["created_at"].endswith("+00:00")

    headers = await login(client, "ada@example.com", "analytical-1")
    me = await client.get("/api/v1/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]


async def test_duplicate_email_is_409_email_taken(client: httpx.AsyncClient) -> None:
    await register_and_login(client, "dup@example.com")
    response = await client.post(
        "/api/v1/auth/register", json={"email": "DUP@example.com", "password": "whatever-1"}
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/email-taken")
