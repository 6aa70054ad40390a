"""Embedded mode: one `shopkeeper serve` process relays, consumes and runs periodic jobs itself."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from shopkeeper.core.settings import Settings
from tests.platform.conftest import SmtpSink, background_settings, eventually, sqlite_only


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
