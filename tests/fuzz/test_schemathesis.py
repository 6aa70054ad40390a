"""Schemathesis over the whole OpenAPI document, as an anonymous caller, a customer and staff,
against a real `shopkeeper serve` on PostgreSQL (where NUL characters and 32-bit overflows used
to answer 500). Any 5xx, undocumented status, wrong content type or response that breaks its
schema fails the build (issue 18). Examples per operation are bounded to keep `make test` fast;
`SHOPKEEPER_FUZZ_EXAMPLES` raises them for a deeper run."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import (
    POSTGRES_ADMIN_URL,
    ServerProcess,
    free_port,
    make_settings,
    require_service,
    settings_env,
)

EXAMPLES = int(os.environ.get("SHOPKEEPER_FUZZ_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
ADMIN = ("fuzz-admin@example.com", "fuzz-admin-password-1")
CUSTOMER = ("fuzz-customer@example.com", "fuzz-customer-password-1")


async def _database(name: str, create: bool) -> None:
    admin = create_async_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        if create:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"shopkeeper_fuzz_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_database(name, create=True))
    tmp = tmp_path_factory.mktemp("fuzz")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    port = free_port()
    settings = make_settings(
        url,
        tmp,
        admin_email=ADMIN[0],
        admin_password=ADMIN[1],
        # Fuzzing means many registrations and logins from one address: the limits would turn
        # most of the run into 429s (which are documented, so they would pass, but test less).
        registrations_per_address="100000/minute",
        login_attempts_per_address="100000/minute",
        login_attempts_per_account="100000/minute",
        guest_carts_per_address="100000/minute",
        log_level="ERROR",
    )
    env = settings_env(settings, SHOPKEEPER_HOST="127.0.0.1", SHOPKEEPER_PORT=str(port))
    processes = []
    try:
        migrate = ServerProcess(["migrate"], env, tmp / "migrate.log")
        processes.append(migrate)
        assert migrate.process.wait(timeout=120) == 0, migrate.output()
        serve = ServerProcess(["serve"], env, tmp / "serve.log")
        processes.append(serve)
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, serve)
        yield base
    finally:
        for process in processes:
            process.stop()
        asyncio.run(_database(name, create=False))


def _wait_ready(base: str, process: ServerProcess) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            raise RuntimeError(process.output()[-3000:])
        try:
            if httpx.get(base + "/health/live", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not start:\n" + process.output()[-3000:])


def _headers(base: str, caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    email, password = ADMIN if caller == "staff" else CUSTOMER
    if caller == "customer":
        httpx.post(base + "/api/v1/auth/register", json={"email": email, "password": password})
    token = httpx.post(
        base + "/api/v1/auth/token", data={"username": email, "password": password}
    ).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("caller", ["anonymous", "customer", "staff"])
def test_the_whole_schema_holds_under_generated_input(server: str, caller: str) -> None:
    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    headers = _headers(server, caller)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            sent = {**headers, **(case.headers or {})}
            response = case.call(base_url=server, headers=sent, timeout=30)
            case.validate_response(response, checks=CHECKS, headers=sent)

        try:
            run()
        except Exception as failure:  # collected so that one run reports every operation
            failures.append(f"{operation.label}: {str(failure)[:1500]}")
    assert operations > 30
    assert failures == [], "\n\n".join(failures)
