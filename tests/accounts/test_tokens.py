"""Refresh-token rotation, reuse detection, logout, and rejection of forged access tokens."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta

import httpx
import jwt

from shopkeeper.core.settings import Settings


async def _tokens(client: httpx.AsyncClient, email: str = "rot@example.com") -> dict[str, str]:
    await client.post("/api/v1/auth/register", json={"email": email, "password": "rotate-me-1"})
    response = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": "rotate-me-1"}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    return dict(body)


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post("/api/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_spends_the_old_token(client: httpx.AsyncClient) -> None:
    first = await _tokens(client)
    rotated = await _refresh(client, first["refresh_token"])
    assert rotated.status_code == 200
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    me = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert me.status_code == 200

    third = await _refresh(client, second["refresh_token"])
    assert third.status_code == 200


async def test_reusing_a_spent_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient,
) -> None:
    first = await _tokens(client)
    second = (await _refresh(client, first["refresh_token"])).json()

    reuse = await _refresh(client, first["refresh_token"])
    assert reuse.status_code == 401
    assert reuse.json()["type"].endswith("/refresh-token-reused")

    # The thief's and the owner's latest token are both dead now.
    after = await _refresh(client, second["refresh_token"])
    assert after.status_code == 401


async def test_reuse_revokes_only_that_family(client: httpx.AsyncClient) -> None:
    phone = await _tokens(client, "two@example.com")
    laptop = await _tokens(client, "two@example.com")
    await _refresh(client, phone["refresh_token"])
    await _refresh(client, phone["refresh_token"])  # reuse: phone family revoked
    assert (await _refresh(client, laptop["refresh_token"])).status_code == 200


async def test_concurrent_refreshes_with_one_token_yield_one_pair(
    client: httpx.AsyncClient,
) -> None:
    first = await _tokens(client)
    responses = await asyncio.gather(*(_refresh(client, first["refresh_token"]) for _ in range(5)))
    statuses = sorted(response.status_code for response in responses)
    assert statuses.count(200) <= 1
    assert all(status in (200, 401) for status in statuses)


async def test_logout_revokes_the_refresh_token(client: httpx.AsyncClient) -> None:
    first = await _tokens(client)
    response = await client.post(
        "/api/v1/auth/logout", json={"refresh_token": first["refresh_token"]}
    )
    assert response.status_code == 204
    assert (await _refresh(client, first["refresh_token"])).status_code == 401


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    response = await _refresh(client, "not-a-token")
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-refresh-token")


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_forged_and_malformed_access_tokens_are_rejected(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    tokens = await _tokens(client)
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    claims["staff"] = True
    forged_with_other_key = jwt.encode(claims, "another-secret-key-" + "y" * 32, algorithm="HS256")
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    assert settings.secret_key is not None
    expired = jwt.encode(
        {**claims, "exp": datetime.now(UTC) - timedelta(seconds=5)},
        settings.secret_key.get_secret_value(),
        algorithm="HS256",
    )
    header, _payload, signature = tokens["access_token"].split(".")
    tampered = f"{header}.{_b64(claims)}.{signature}"

    for token in (forged_with_other_key, alg_none, expired, tampered, "garbage", "a.b.c"):
        response = await client.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, token
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["type"].endswith("/invalid-token")


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient) -> None:
    tokens = await _tokens(client)
    response = await client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {tokens['refresh_token']}"}
    )
    assert response.status_code == 401


async def test_me_without_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/users/me")
    assert response.status_code == 401
    assert response.json()["status"] == 401
