"""Embedded mode: one `shopkeeper serve` process relays, consumes and runs periodic jobs itself."""

from __future__ import annotations

import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from shopkeeper.core.settings import Settings
from tests.conftest import ServerProcess, free_port, settings_env, wait_until_ready
from tests.support.platform import SmtpSink, background_settings, eventually, sqlite_only


async def test_serve_alone_sends_one_welcome_mail_over_smtp(
    backend: str,
    settings_factory: Callable[..., Settings],
    server_factory: Callable[..., Awaitable[str]],
    smtp_server: SmtpSink,
) -> None:
    sqlite_only(backend)
    settings = background_settings(
        settings_factory,
        run_background_in_process=True,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
    )
    base_url = await server_factory(settings)

    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(
            "/api/v1/auth/register",
            json={"email": "alan@example.com", "password": "correct-horse-1", "full_name": "Alan"},
        )
        assert response.status_code == 201, response.text

    await eventually(lambda: len(smtp_server.messages) == 1, what="the welcome mail")
    [message] = smtp_server.messages
    assert message["To"] == "alan@example.com"
    assert message["Subject"] == "Welcome to shopkeeper, Alan"
    parts: dict[str, Any] = {part.get_content_type(): part for part in message.walk()}
    assert "Hello Alan" in parts["text/plain"].get_content()
    assert "<strong>alan@example.com</strong>" in parts["text/html"].get_content()


async def test_serve_killed_while_sending_sends_exactly_one_welcome_mail_after_restart(
    backend: str,
    settings_factory: Callable[..., Settings],
    process_factory: Callable[..., ServerProcess],
    smtp_server: SmtpSink,
) -> None:
    sqlite_only(backend)
    settings = background_settings(
        settings_factory,
        run_background_in_process=True,
        smtp_host=smtp_server.host,
        smtp_port=smtp_server.port,
        job_max_retries=8,
    )
    port = free_port()
    env = settings_env(settings, SHOPKEEPER_HOST="127.0.0.1", SHOPKEEPER_PORT=str(port))
    base_url = f"http://127.0.0.1:{port}"
    first = process_factory(["serve"], env)
    await wait_until_ready(base_url, first)

    def kill_server_during_first_delivery(attempt: int) -> str | None:
        if attempt == 1:
            os.kill(first.process.pid, signal.SIGKILL)
            return "451 4.3.0 connection lost"
        return None

    smtp_server.on_data = kill_server_during_first_delivery
    async with httpx.AsyncClient(base_url=base_url) as http:
        response = await http.post(
            "/api/v1/auth/register",
            json={"email": "edsger@example.com", "password": "correct-horse-1"},
        )
        assert response.status_code == 201, response.text
    await eventually(lambda: first.process.poll() is not None, what="the server to die")

    second = process_factory(["serve"], env)
    await wait_until_ready(base_url, second)

    await eventually(lambda: len(smtp_server.messages) == 1, what="the welcome mail")
    async with httpx.AsyncClient(base_url=base_url) as http:
        # Whatever else the restarted server does, it never sends the mail a second time: the
        # mail is marked sent before any later attempt could claim it.
        await http.post(
            "/api/v1/auth/register",
            json={"email": "barbara@example.com", "password": "correct-horse-1"},
        )
    await eventually(lambda: len(smtp_server.messages) == 2, what="the next mail")
    assert [message["To"] for message in smtp_server.messages] == [
        "edsger@example.com",
        "barbara@example.com",
    ]
    assert smtp_server.attempts == 3
