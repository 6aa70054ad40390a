"""Issue 18 item 2: argon2 never runs on the event loop, and registration is rate-limited per
client address like login. (The latency effect is measured in bench/, not asserted here.)"""

from __future__ import annotations

import threading

import argon2
import httpx
import pytest


@pytest.fixture
def hashing_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the threads argon2 (the third-party library) computes in."""
    seen: list[str] = []
    original_hash, original_verify = argon2.PasswordHasher.hash, argon2.PasswordHasher.verify

    def spy_hash(self: argon2.PasswordHasher, *args: object, **kwargs: object) -> str:
        seen.append(threading.current_thread().name)
        return original_hash(self, *args, **kwargs)  # type: ignore[arg-type]

    def spy_verify(self: argon2.PasswordHasher, *args: object, **kwargs: object) -> bool:
        seen.append(threading.current_thread().name)
        return original_verify(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(argon2.PasswordHasher, "hash", spy_hash)
    monkeypatch.setattr(argon2.PasswordHasher, "verify", spy_verify)
    return seen


async def test_register_and_login_hash_off_the_event_loop(
    client: httpx.AsyncClient, hashing_threads: list[str]
) -> None:
    body = {"email": "offloop@example.com", "password": "long-enough-1"}
    assert (await client.post("/api/v1/auth/register", json=body)).status_code == 201
    for password in ("long-enough-1", "wrong-password"):
        await client.post(
            "/api/v1/auth/token", data={"username": body["email"], "password": password}
        )
    await client.post("/api/v1/auth/token", data={"username": "nobody@x.org", "password": "x"})
    loop_thread = threading.current_thread().name
    assert len(hashing_threads) == 4
    assert all(name.startswith("password-hash") for name in hashing_threads), hashing_threads
    assert loop_thread not in hashing_threads


async def test_registrations_are_limited_per_address(client: httpx.AsyncClient) -> None:
    statuses = []
    for index in range(21):
        response = await client.post(
            "/api/v1/auth/register",
            json={"email": f"flood-{index}@example.com", "password": "long-enough-1"},
        )
        statuses.append(response.status_code)
    assert statuses[:20] == [201] * 20
    assert statuses[20] == 429
    assert int(response.headers["retry-after"]) >= 1
