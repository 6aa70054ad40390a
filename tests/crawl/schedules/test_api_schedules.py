"""The schedules API: create with `next_fire_at`, 422 for what does not parse, read, change,
delete."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.crawl.scheduling import CRAWL_BODY

API = "/api/v1/crawl/schedules"


async def test_a_schedule_is_created_with_its_next_fire_time_in_its_time_zone(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        API,
        json={
            "name": "nightly",
            "cron": "30 2 * * *",
            "timezone": "Asia/Tokyo",
            "crawl": CRAWL_BODY,
        },
    )
    assert response.status_code == 201, response.text
    schedule = response.json()
    assert schedule["overlap"] == "skip" and schedule["misfire_grace_s"] == 300
    assert schedule["enabled"] is True and schedule["spider"] is None
    fire_at = datetime.fromisoformat(schedule["next_fire_at"])
    # 02:30 in Tokyo (UTC+9) is 17:30 UTC.
    assert (fire_at.hour, fire_at.minute, fire_at.second) == (17, 30, 0)

    fetched = await client.get(f"{API}/{schedule['id']}")
    assert fetched.status_code == 200 and fetched.json() == schedule


async def test_six_fields_put_seconds_first(client: httpx.AsyncClient) -> None:
    response = await client.post(
        API, json={"name": "s", "cron": "*/20 * * * * *", "crawl": CRAWL_BODY}
    )
    assert response.status_code == 201, response.text
    assert datetime.fromisoformat(response.json()["next_fire_at"]).second in {0, 20, 40}


async def test_what_does_not_parse_is_a_422_problem(client: httpx.AsyncClient) -> None:
    cases = [
        ({"name": "x", "cron": "every day", "crawl": CRAWL_BODY}, "cron"),
        ({"name": "x", "cron": "61 * * * *", "crawl": CRAWL_BODY}, "cron"),
        ({"name": "x", "cron": "* * * *", "crawl": CRAWL_BODY}, "cron"),
        (
            {"name": "x", "cron": "* * * * *", "timezone": "Mars/Base", "crawl": CRAWL_BODY},
            "timezone",
        ),
        ({"name": "x", "cron": "* * * * *", "spider": "nobody"}, "spider"),
    ]
    for body, field in cases:
        response = await client.post(API, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert ["body", field] in [error["loc"][:2] for error in response.json()["errors"]]
    neither = await client.post(API, json={"name": "x", "cron": "* * * * *"})
    both = await client.post(
        API, json={"name": "x", "cron": "* * * * *", "crawl": CRAWL_BODY, "spider": "sleeper"}
    )
    assert neither.status_code == both.status_code == 422


async def test_patch_replans_and_disabling_clears_the_next_fire(
    client: httpx.AsyncClient,
) -> None:
    created = (
        await client.post(API, json={"name": "s", "cron": "0 0 1 1 *", "spider": "sleeper"})
    ).json()
    assert datetime.fromisoformat(created["next_fire_at"]).month == 1

    changed = await client.patch(
        f"{API}/{created['id']}", json={"cron": "0 0 1 6 *", "overlap": "queue"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["overlap"] == "queue" and changed.json()["spider"] == "sleeper"
    assert datetime.fromisoformat(changed.json()["next_fire_at"]).month == 6

    disabled = await client.patch(f"{API}/{created['id']}", json={"enabled": False})
    assert disabled.json()["enabled"] is False and disabled.json()["next_fire_at"] is None
    bad = await client.patch(f"{API}/{created['id']}", json={"cron": "nope"})
    assert bad.status_code == 422

    listed = (await client.get(API)).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]

    assert (await client.delete(f"{API}/{created['id']}")).status_code == 204
    missing = await client.get(f"{API}/{created['id']}")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("schedule-not-found")


async def test_schedules_need_crawl_permissions(client: httpx.AsyncClient) -> None:
    anonymous = await client.get(API, headers={"Authorization": ""})
    assert anonymous.status_code == 401
