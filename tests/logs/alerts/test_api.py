"""The alerts API as a client sees it: create, read, change, delete, history; permissions and
tenants; problem+json errors."""

from __future__ import annotations

from typing import Any

import httpx

from tests.logs.alerts.conftest import KeyFactory

RULE: dict[str, Any] = {
    "name": "many errors",
    "query": 'sum(count_over_time({service="api"} |= "error" [5m]))',
    "op": ">",
    "threshold": 10,
    "for": "1m",
    "every": "15s",
    "labels": {"severity": "page"},
    "notify": [
        {"type": "email", "to": "oncall@example.com"},
        {"type": "webhook", "url": "http://127.0.0.1:9/hook"},
    ],
}


async def test_an_admin_creates_reads_changes_and_deletes_an_alert(
    alerts_client: httpx.AsyncClient, key_headers: KeyFactory, tenant: str
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    created = await alerts_client.post("/api/v1/logs/alerts", json=RULE, headers=admin)
    assert created.status_code == 201, created.text
    alert = created.json()
    assert alert["state"] == "inactive"
    assert alert["last_value"] is None and alert["last_evaluated_at"] is None
    assert alert["active_since"] is None
    assert {k: alert[k] for k in RULE} == RULE

    url = f"/api/v1/logs/alerts/{alert['id']}"
    assert (await alerts_client.get(url, headers=admin)).json() == alert
    listed = (await alerts_client.get("/api/v1/logs/alerts", headers=admin)).json()
    assert listed == {"items": [alert], "next_cursor": None}

    changed = await alerts_client.patch(url, json={"threshold": 20, "for": "0s"}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["threshold"] == 20 and changed.json()["for"] == "0s"
    assert changed.json()["name"] == RULE["name"]

    assert (await alerts_client.delete(url, headers=admin)).status_code == 204
    missing = await alerts_client.get(url, headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["type"].endswith("/alert-not-found")


async def test_readers_read_and_only_admins_change(
    alerts_client: httpx.AsyncClient, key_headers: KeyFactory, tenant: str
) -> None:
    admin = await key_headers(["logs:admin"], tenant)
    reader = await key_headers(["logs:read"], tenant)
    writer = await key_headers(["logs:write"], tenant)
    assert (await alerts_client.post("/api/v1/logs/alerts", json=RULE)).status_code == 401
    denied = await alerts_client.post("/api/v1/logs/alerts", json=RULE, headers=reader)
    assert denied.status_code == 403
    assert denied.json()["type"].endswith("/permission-denied")
    created = await alerts_client.post("/api/v1/logs/alerts", json=RULE, headers=admin)
    url = f"/api/v1/logs/alerts/{created.json()['id']}"
    assert (await alerts_client.get(url, headers=reader)).status_code == 200
    assert (await alerts_client.get(url, headers=writer)).status_code == 403
    assert (await alerts_client.get(f"{url}/history", headers=reader)).status_code == 200
    patched = await alerts_client.patch(url, json={"threshold": 1}, headers=reader)
    assert patched.status_code == 403
    assert (await alerts_client.delete(url, headers=reader)).status_code == 403


async def test_another_tenants_alert_is_not_found(
    alerts_client: httpx.AsyncClient, key_headers: KeyFactory, tenant: str
) -> None:
    mine = await key_headers(["logs:read", "logs:admin"], tenant)
    theirs = await key_headers(["logs:read", "logs:admin"], f"{tenant}_other")
    created = await alerts_client.post("/api/v1/logs/alerts", json=RULE, headers=mine)
    url = f"/api/v1/logs/alerts/{created.json()['id']}"
    assert (await alerts_client.get(url, headers=theirs)).status_code == 404
    assert (await alerts_client.get(f"{url}/history", headers=theirs)).status_code == 404
    patched = await alerts_client.patch(url, json={"threshold": 1}, headers=theirs)
    assert patched.status_code == 404
    assert (await alerts_client.delete(url, headers=theirs)).status_code == 404
    listed = await alerts_client.get("/api/v1/logs/alerts", headers=theirs)
    assert listed.json()["items"] == []


async def test_a_rule_that_is_not_a_metric_query_is_422(
    alerts_client: httpx.AsyncClient, key_headers: KeyFactory, tenant: str
) -> None:
    admin = await key_headers(["logs:admin"], tenant)
    for query in ('{service="api"} |= "error"', "count_over_time({service=}[5m])"):
        answer = await alerts_client.post(
            "/api/v1/logs/alerts", json={**RULE, "query": query}, headers=admin
        )
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith("/invalid-alert-query")
        assert answer.json()["errors"][0]["loc"] == ["body", "query"]


async def test_bad_fields_are_422(
    alerts_client: httpx.AsyncClient, key_headers: KeyFactory, tenant: str
) -> None:
    admin = await key_headers(["logs:admin"], tenant)
    for change in (
        {"op": "=="},
        {"for": "soon"},
        {"every": "0s"},
        {"notify": [{"type": "email", "to": "not-an-address"}]},
        {"notify": [{"type": "pager", "to": "x"}]},
        {"threshold": "high"},
    ):
        answer = await alerts_client.post(
            "/api/v1/logs/alerts", json={**RULE, **change}, headers=admin
        )
        assert answer.status_code == 422, (change, answer.text)
        assert answer.json()["type"].endswith("/validation-error")


async def test_alerts_are_listed_a_page_at_a_time(
    alerts_client: httpx.AsyncClient, key_headers: KeyFactory, tenant: str
) -> None:
    admin = await key_headers(["logs:read", "logs:admin"], tenant)
    ids = []
    for n in range(5):
        answer = await alerts_client.post(
            "/api/v1/logs/alerts", json={**RULE, "name": f"rule {n}"}, headers=admin
        )
        ids.append(answer.json()["id"])
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await alerts_client.get("/api/v1/logs/alerts", params=params, headers=admin)).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    bad = await alerts_client.get("/api/v1/logs/alerts", params={"cursor": "%%%"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["type"].endswith("/invalid-cursor")
