"""A crawl end to end over the API: created, crawled by a worker, read back as pages, export,
hosts and stats; counted by the local site."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import httpx
from asgi_lifespan import LifespanManager

from shopkeeper.app import create_app
from shopkeeper.core.runtime import Runtime
from tests.crawl.domain.conftest import api_key
from tests.crawl.domain.support import all_pages, wait_for_status, worker_running
from tests.support.crawl_site import PRODUCTS, CrawlSite


def shop_crawl(site: CrawlSite, **changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "name": "shop",
        "seeds": [site.url("shop", "/")],
        "scope": {"allow": [site.authority("shop")], "deny": ["/calendar/"]},
        "politeness": {"delay_ms": 0, "max_inflight_per_host": 4},
        "extract": {"links": True, "product": True, "fields": {"heading": "h1"}},
    }
    body.update(changes)
    return body


async def test_a_crawl_over_the_api_stores_each_url_once(
    client: httpx.AsyncClient, app: object, crawl_site: CrawlSite
) -> None:
    created = await client.post("/api/v1/crawl/crawls", json=shop_crawl(crawl_site))
    assert created.status_code == 201, created.text
    crawl = created.json()
    assert crawl["status"] == "queued"
    assert crawl["stats"]["seen"] == 1 and crawl["stats"]["queued"] == 1

    async with worker_running(app):  # type: ignore[arg-type]
        crawl = await wait_for_status(client, crawl["id"], {"finished"})

    pages = await all_pages(client, crawl["id"])
    by_path = {page["url"].split(crawl_site.authority("shop"), 1)[1]: page for page in pages}
    assert len(by_path) == len(pages)
    expected = {"/", "/missing", "/old/product/2"}
    expected |= {"/private/secret", "/hidden-from-shopkeeper/page"}
    expected |= {f"/products?page={n}" for n in (1, 2, 3)}
    expected |= {product.path for product in PRODUCTS}
    assert set(by_path) == expected
    assert by_path["/missing"]["state"] == "failed" and by_path["/missing"]["status"] == 404
    assert by_path["/private/secret"]["state"] == "robots_denied"
    assert by_path["/hidden-from-shopkeeper/page"]["state"] == "robots_denied"
    redirect = by_path["/old/product/2"]
    assert redirect["state"] == "fetched" and redirect["status"] == 301
    assert redirect["final_url"] == crawl_site.url("shop", "/product/2")
    for product in PRODUCTS:
        page = by_path[product.path]
        assert page["state"] == "fetched" and page["status"] == 200
        assert page["product"]["price"] == {"amount": product.amount, "currency": product.currency}
        assert page["product"]["sku"] == product.sku
        assert page["fields"] == {"heading": product.name} or page["fields"]["heading"]
    assert by_path["/"]["title"] == "Shop home" and by_path["/"]["depth"] == 0

    # The site saw each page once, robots.txt once, nothing disallowed or out of scope.
    seen = Counter(request.path for request in crawl_site.requests("shop"))
    assert seen["/robots.txt"] == 1
    assert not [path for path in seen if path.startswith(("/private/", "/hidden", "/calendar"))]
    fetched_paths = {path for path in expected if by_path[path]["state"] != "robots_denied"}
    assert {path: seen[path] for path in fetched_paths} == dict.fromkeys(fetched_paths, 1)

    stats = crawl["stats"]
    assert stats["fetched"] == len(expected) - 3
    assert stats["failed"] == 1 and stats["robots_denied"] == 2 and stats["dead"] == 0
    assert stats["queued"] == 0 and stats["in_flight"] == 0
    assert stats["by_status"] == {"200": len(expected) - 4, "301": 1, "404": 1}
    assert crawl["finished_at"] is not None

    denied = await all_pages(client, crawl["id"], status="robots_denied")
    assert {page["url"] for page in denied} == {
        crawl_site.url("shop", "/private/secret"),
        crawl_site.url("shop", "/hidden-from-shopkeeper/page"),
    }

    exported = await client.get(f"/api/v1/crawl/crawls/{crawl['id']}/export?format=jsonl")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert sorted(line["url"] for line in lines) == sorted(page["url"] for page in pages)

    exported_csv = await client.get(f"/api/v1/crawl/crawls/{crawl['id']}/export?format=csv")
    rows = list(csv.DictReader(io.StringIO(exported_csv.text)))
    assert sorted(row["url"] for row in rows) == sorted(page["url"] for page in pages)

    hosts = (await client.get(f"/api/v1/crawl/crawls/{crawl['id']}/hosts")).json()
    assert [host["host"] for host in hosts] == [crawl_site.authority("shop")]
    (host,) = hosts
    assert host["robots"]["status"] == 200
    assert host["fetched"] == len(expected) - 3 and host["errors"] == 1
    assert host["in_flight"] == 0


async def test_a_crawl_without_scope_allow_is_422(client: httpx.AsyncClient) -> None:
    body = {"name": "x", "seeds": ["http://127.0.0.2:1/"], "scope": {"deny": []}}
    response = await client.post("/api/v1/crawl/crawls", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body["scope"] = {"allow": []}
    assert (await client.post("/api/v1/crawl/crawls", json=body)).status_code == 422
    body["scope"] = {"allow": ["127.0.0.2:1"], "deny": ["^(unclosed"]}
    response = await client.post("/api/v1/crawl/crawls", json=body)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "scope"]
    body["scope"] = {"allow": ["127.0.0.3:1"]}
    response = await client.post("/api/v1/crawl/crawls", json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["body", "seeds", "0"]


async def test_pause_resume_cancel(client: httpx.AsyncClient, crawl_site: CrawlSite) -> None:
    created = await client.post(
        "/api/v1/crawl/crawls", json=shop_crawl(crawl_site, politeness={"delay_ms": 0})
    )
    crawl_id = created.json()["id"]
    paused = await client.post(f"/api/v1/crawl/crawls/{crawl_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert (await client.post(f"/api/v1/crawl/crawls/{crawl_id}/pause")).status_code == 200
    resumed = await client.post(f"/api/v1/crawl/crawls/{crawl_id}/resume")
    assert resumed.json()["status"] == "running"
    cancelled = await client.post(f"/api/v1/crawl/crawls/{crawl_id}/cancel")
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["stats"]["queued"] == 0
    again = await client.post(f"/api/v1/crawl/crawls/{crawl_id}/resume")
    assert again.status_code == 409
    assert again.json()["type"].endswith("/crawl-state-conflict")
    missing = await client.get("/api/v1/crawl/crawls/0190f000-0000-7000-8000-000000000000")
    assert missing.status_code == 404
    listed = (await client.get("/api/v1/crawl/crawls")).json()
    assert [item["id"] for item in listed["items"]] == [crawl_id]


async def test_reads_need_crawl_read_and_changes_crawl_write(
    app: object, runtime: Runtime, crawl_site: CrawlSite
) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    body = shop_crawl(crawl_site)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous:
        for method, path in (("GET", "/crawls"), ("GET", "/workers"), ("POST", "/crawls")):
            response = await anonymous.request(method, f"/api/v1/crawl{path}", json=body)
            assert response.status_code == 401, (path, response.text)
        reader = await api_key(runtime, "crawl:read")
        writer = await api_key(runtime, "crawl:write")
        worker = await api_key(runtime, "crawl:worker")
        denied = await anonymous.post("/api/v1/crawl/crawls", json=body, headers=reader)
        assert denied.status_code == 403
        assert denied.json()["type"].endswith("/permission-denied")
        created = await anonymous.post("/api/v1/crawl/crawls", json=body, headers=writer)
        assert created.status_code == 201
        crawl_id = created.json()["id"]
        assert (await anonymous.get("/api/v1/crawl/crawls", headers=writer)).status_code == 403
        assert (await anonymous.get("/api/v1/crawl/crawls", headers=worker)).status_code == 403
        pages = await anonymous.get(f"/api/v1/crawl/crawls/{crawl_id}/pages", headers=reader)
        assert pages.status_code == 200
        cancel = await anonymous.post(f"/api/v1/crawl/crawls/{crawl_id}/cancel", headers=reader)
        assert cancel.status_code == 403


async def test_the_calendar_trap_is_stopped_by_max_depth(
    client: httpx.AsyncClient, app: object, crawl_site: CrawlSite
) -> None:
    body = shop_crawl(crawl_site, extract={"links": True})
    body["scope"] = {"allow": [crawl_site.authority("shop")], "max_depth": 4}
    crawl = (await client.post("/api/v1/crawl/crawls", json=body)).json()
    async with worker_running(app):  # type: ignore[arg-type]
        await wait_for_status(client, crawl["id"], {"finished"})
    months = {r.path for r in crawl_site.requests("shop") if r.path.startswith("/calendar/")}
    # /calendar/2026/01 is depth 1; each step away from it is one link deeper, up to depth 4.
    assert months == {
        "/calendar/2025/10",
        "/calendar/2025/11",
        "/calendar/2025/12",
        "/calendar/2026/01",
        "/calendar/2026/02",
        "/calendar/2026/03",
        "/calendar/2026/04",
    }
    pages = await all_pages(client, crawl["id"])
    assert max(page["depth"] for page in pages) == 4


async def test_serve_runs_a_worker_in_process_when_asked(
    runtime: Runtime, crawl_site: CrawlSite
) -> None:
    runtime.settings.crawl_inprocess_worker = True
    application = create_app(runtime=runtime)
    async with LifespanManager(application):
        headers = await api_key(runtime, "crawl:read", "crawl:write")
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers=headers
        ) as http:
            body = shop_crawl(crawl_site)
            body["scope"] = {"allow": [crawl_site.authority("shop")], "max_pages": 5}
            crawl = (await http.post("/api/v1/crawl/crawls", json=body)).json()
            finished = await wait_for_status(http, crawl["id"], {"finished"})
            assert finished["stats"]["seen"] == 5
            workers = (await http.get("/api/v1/crawl/workers")).json()
            assert [worker["name"] for worker in workers] == ["serve"]
    assert len({r.path for r in crawl_site.requests("shop") if r.path != "/robots.txt"}) == 5
