"""The pages around the API: `/` says where everything is, Swagger UI and ReDoc come from the
package (they work with no internet), and CORS follows `cors_origins`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from playwright.async_api import Page, Route

from shopkeeper.app import create_app
from shopkeeper.core.settings import Settings
from tests.support.browser import SCREENSHOTS, screenshot


async def test_the_root_links_the_api_docs_and_admin(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 200
    links = {name: link["href"] for name, link in answer.json()["links"].items()}
    assert links["api"] == "/api/v1" and links["api_docs"] == "/docs"
    assert links["admin"] == "/admin" and links["openapi"] == "/openapi.json"
    page = await client.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html")
    for href in ("/api/v1", "/docs", "/redoc", "/admin"):
        assert f'href="{href}"' in page.text


async def test_docs_pages_load_only_packaged_assets(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc"):
        page = await client.get(path)
        assert page.status_code == 200
        sources = re.findall(r"""(?:src|href|url)\s*[:=]\s*["']([^"']+)["']""", page.text)
        assert sources and not [s for s in sources if s.startswith(("http", "//"))], sources
        assert "/static/vendor/" in page.text
        assert "fonts.googleapis" not in page.text and "cdn." not in page.text
    for asset in (
        "/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "/static/vendor/swagger-ui/swagger-ui.css",
        "/static/vendor/redoc/redoc.standalone.js",
    ):
        assert (await client.get(asset)).status_code == 200


async def test_cors_follows_the_allowed_origins_even_for_cached_reads(
    settings_factory: Callable[..., Settings], runtime: Any
) -> None:
    allowed, other = "https://shop.example", "https://evil.example"
    app = create_app(settings_factory(cors_origins=[allowed]))
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        preflight = await client.options(
            "/api/v1/orders",
            headers={
                "Origin": allowed,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,idempotency-key",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == allowed
        for _ in range(2):  # the second answer comes from the response cache
            read = await client.get("/api/v1/categories", headers={"Origin": allowed})
            assert read.status_code == 200
            assert read.headers["access-control-allow-origin"] == allowed
            assert "ETag" in read.headers["access-control-expose-headers"]
        refused = await client.get("/api/v1/categories", headers={"Origin": other})
        assert "access-control-allow-origin" not in refused.headers
        problem = await client.get("/api/v1/orders", headers={"Origin": allowed})
        assert problem.status_code == 401
        assert problem.headers["access-control-allow-origin"] == allowed


async def test_without_origins_there_is_no_cross_origin_access(client: httpx.AsyncClient) -> None:
    read = await client.get("/api/v1/categories", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in read.headers


def test_origins_are_read_as_commas_or_a_json_list(tmp_path: Any) -> None:
    commas = Settings(var_dir=tmp_path, cors_origins="https://a.example, https://b.example/")
    assert commas.cors_origins == ["https://a.example", "https://b.example"]
    listed = Settings(var_dir=tmp_path, cors_origins='["https://a.example"]')
    assert listed.cors_origins == ["https://a.example"]


async def test_swagger_ui_renders_the_operations_with_no_internet(
    page: Page, settings: Settings, server_factory: Callable[..., Any]
) -> None:
    base = await server_factory(settings)
    leaving: list[str] = []

    async def only_loopback(route: Route) -> None:
        url = route.request.url
        if url.startswith(("http://127.0.0.1", "http://localhost", "data:", "blob:")):
            await route.continue_()
        else:
            leaving.append(url)
            await route.abort()

    await page.route("**/*", only_loopback)
    await page.goto(f"{base}/docs")
    await page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = await page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/payments/{payment_id}/resolve" in [p.replace("\u200b", "") for p in paths]
    assert await page.locator(".opblock-tag-section").count() >= 5
    await page.screenshot(path=str(SCREENSHOTS / "docs-swagger-offline-top.png"))
    await screenshot(page, "docs-swagger-offline")
    await page.goto(f"{base}/redoc")
    await page.locator("h2", has_text="Resolve Payment").wait_for(timeout=30_000)
    await page.screenshot(path=str(SCREENSHOTS / "docs-redoc-offline-top.png"))
    await screenshot(page, "docs-redoc-offline")
    assert leaving == []
