"""`shopkeeper users ...`: list, promote, demote, set-password, deactivate, as an operator runs
them, and what the user sees afterwards."""

from __future__ import annotations

import subprocess
import sys

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import login, register_and_login, settings_env

USERS = [sys.executable, "-m", "shopkeeper.cli", "users"]


def users(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*USERS, *args],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_promote_list_and_demote_change_what_the_user_may_do(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    email = "clerk@example.com"
    customer = await register_and_login(client, email, "clerk-password-1")
    assert (await client.get("/api/v1/payments", headers=customer)).status_code == 403

    promoted = users(settings, "promote", "Clerk@Example.com", "--role", "shop_staff")
    assert promoted.returncode == 0, promoted.stderr
    assert "shop_staff" in promoted.stderr
    staff = await login(client, email, "clerk-password-1")
    assert (await client.get("/api/v1/payments", headers=staff)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=staff)).json()["is_staff"] is True

    listed = users(settings, "list", "--role", "shop_staff")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[0].split("\t")[:3] == [email, "shop_staff", "active"]

    demoted = users(settings, "demote", email)
    assert demoted.returncode == 0 and "no roles" in demoted.stderr
    again = await login(client, email, "clerk-password-1")
    assert (await client.get("/api/v1/payments", headers=again)).status_code == 403
    assert users(settings, "list", "--role", "shop_staff").stdout == ""


async def test_set_password_and_deactivate_end_sessions(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    email = "leaver@example.com"
    await register_and_login(client, email, "first-password-1")
    token = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": "first-password-1"}
    )
    refresh = token.json()["refresh_token"]

    changed = users(settings, "set-password", email, "--password", "second-password-2")
    assert changed.returncode == 0, changed.stderr
    old = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": "first-password-1"}
    )
    assert old.status_code == 401
    ended = await client.post("/api/v1/auth/refresh", json={"refresh_token": refresh})
    assert ended.status_code == 401
    await login(client, email, "second-password-2")

    deactivated = users(settings, "deactivate", email)
    assert deactivated.returncode == 0 and "deactivated" in deactivated.stderr
    refused = await client.post(
        "/api/v1/auth/token", data={"username": email, "password": "second-password-2"}
    )
    assert refused.status_code == 401
    listed = users(settings, "list").stdout
    assert f"{email}\t-\tinactive" in listed


async def test_refusals_name_the_problem(settings: Settings) -> None:
    unknown = users(settings, "deactivate", "nobody@example.com")
    assert unknown.returncode == 1 and "No user nobody@example.com" in unknown.stderr
    bad_role = users(settings, "promote", "nobody@example.com", "--role", "wizard")
    assert bad_role.returncode == 1 and "No such role: wizard" in bad_role.stderr
    assert "shop_staff" in bad_role.stderr
    short = users(settings, "set-password", "nobody@example.com", "--password", "short")
    assert short.returncode == 1 and "at least 8" in short.stderr
    assert all("Traceback" not in r.stderr for r in (unknown, bad_role, short))
