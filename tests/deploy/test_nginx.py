"""deploy/nginx.conf in front of a real `shopkeeper serve`: what a client sees at the edge."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets

from tests.conftest import (
    IN_CI,
    ServerProcess,
    free_port,
    make_settings,
    settings_env,
    wait_until_ready,
)

RENDER = Path(__file__).resolve().parents[2] / "deploy" / "local" / "render-nginx.sh"


@dataclass
class Edge:
    url: str
    app_url: str
    app_log: Path
    access_log: Path


@pytest.fixture(scope="module")
async def edge(
    backend: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Edge]:
    """One `shopkeeper serve` and one nginx for the whole module: starting them is the slow
    part, and none of these tests changes state the others read."""
    if backend != "sqlite":
        pytest.skip("the proxy's behaviour does not depend on the database; run once")
    if shutil.which("nginx") is None:
        message = "nginx is not installed (apt-get install nginx, or deploy/local/run.sh)"
        if IN_CI:
            pytest.fail(message + "; .ci/run installs it")
        pytest.skip(message)
    root = tmp_path_factory.mktemp("edge")
    app_port, http_port = free_port(), free_port()
    settings = make_settings(database_url, root, log_level="INFO")
    env = settings_env(settings, SHOPKEEPER_HOST="127.0.0.1", SHOPKEEPER_PORT=str(app_port))
    server = ServerProcess(["serve"], env, root / "serve.log")
    app_url = f"http://127.0.0.1:{app_port}"
    nginx: subprocess.Popen[bytes] | None = None
    try:
        await wait_until_ready(app_url, server)
        for directory in ("log", "nginx"):
            (root / directory).mkdir(exist_ok=True)
        config = root / "nginx" / "nginx.conf"
        rendered = subprocess.run(
            ["bash", str(RENDER), str(root), str(app_port), str(http_port)],
            check=True,
            capture_output=True,
            text=True,
        )
        config.write_text(rendered.stdout)
        command = ["nginx", "-p", str(root / "nginx"), "-c", str(config)]
        command += ["-g", f"pid {root / 'nginx.pid'}; daemon off;"]
        nginx = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{http_port}"
        async with httpx.AsyncClient(base_url=url, timeout=2) as http:
            for _ in range(100):
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/nginx-health")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield Edge(
            url=url,
            app_url=app_url,
            app_log=server.log_path,
            access_log=root / "log" / "nginx-access.log",
        )
    finally:
        if nginx is not None:
            nginx.terminate()
            nginx.wait(timeout=10)
        server.stop()


async def test_api_answers_through_nginx_with_the_request_id(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        chosen = await http.get("/health/live", headers={"X-Request-ID": "edge-test-1"})
        made = await http.get("/health/live")

    assert chosen.status_code == 200 and chosen.json() == {"status": "ok"}
    assert chosen.headers["x-request-id"] == "edge-test-1"
    assert len(made.headers["x-request-id"]) == 32  # nginx's $request_id, passed to the app


async def test_metrics_are_hidden_at_the_edge_but_served_inside(edge: Edge) -> None:
    async with httpx.AsyncClient() as http:
        for path in ("/metrics", "/metrics/", "/metrics?format=text"):
            assert (await http.get(edge.url + path)).status_code == 404
        inside = await http.get(edge.app_url + "/metrics")
    assert inside.status_code == 200
    assert "shopkeeper_http_requests_total" in inside.text


async def test_bodies_over_one_mebibyte_stop_at_nginx(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.post(
            "/api/v1/auth/register",
            content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 413
    assert "nginx" in response.text  # refused at the edge, never reached a worker


async def test_json_is_gzipped_for_clients_that_accept_it(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        response = await http.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert "paths" in response.json()


async def test_the_app_sees_the_client_address_not_the_proxy_nor_a_forged_one(
    edge: Edge,
) -> None:
    # Connect from 127.0.0.2 while claiming another address; nginx connects from 127.0.0.1.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=edge.url, transport=transport) as http:
        response = await http.post(
            "/admin/login",
            data={"username": "nobody@example.com", "password": "wrong-password"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
    assert response.status_code == 400

    refused = ""
    for _ in range(50):
        lines = edge.app_log.read_text().splitlines()
        refused = next((line for line in lines if "admin_login_refused" in line), "")
        if refused:
            break
        await asyncio.sleep(0.05)
    assert '"client": "127.0.0.2"' in refused


async def test_websocket_upgrades_pass_through_nginx_and_tokens_stay_out_of_its_log(
    edge: Edge,
) -> None:
    ws_url = edge.url.replace("http://", "ws://") + "/api/v1/ws/admin?token=secret-looking-token"
    with pytest.raises(websockets.ConnectionClosed) as closed:
        async with websockets.connect(ws_url, open_timeout=5) as socket:
            await asyncio.wait_for(socket.recv(), 5)
    # 4401 comes from the app: the upgrade reached it through the proxy.
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    logged: list[str] = []
    for _ in range(50):  # nginx writes the line once it has closed the upstream connection
        lines = edge.access_log.read_text().splitlines()
        logged = [line for line in lines if "/api/v1/ws/" in line]
        if logged:
            break
        await asyncio.sleep(0.05)
    assert logged and all("secret-looking-token" not in line for line in logged)


async def test_absolute_urls_keep_the_host_and_port_the_client_used(edge: Edge) -> None:
    async with httpx.AsyncClient(base_url=edge.url) as http:
        redirect = await http.get("/admin/")
        login_page = await http.get("/admin/login")

    assert redirect.status_code == 302
    assert redirect.headers["location"] == f"{edge.url}/admin/login"
    assert f'href="{edge.url}/admin/statics/css/' in login_page.text
