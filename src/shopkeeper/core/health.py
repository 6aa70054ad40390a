"""Liveness, readiness (database, and Redis/broker when configured) and the metrics endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping

from fastapi import APIRouter, Response
from sqlalchemy import text

from shopkeeper.core.observability import metrics_payload
from shopkeeper.core.runtime import AppRuntime, Runtime
from shopkeeper.core.startup import MigrationsPending, check_migrated

router = APIRouter(tags=["operations"])

READINESS_TIMEOUT_SECONDS = 2.0


async def check_dependencies(runtime: Runtime) -> dict[str, str]:
    """Each configured dependency mapped to "ok" or the reason it failed; the schema is checked
    once the database answers (a database that is down is one failure, not two)."""
    checks = {
        "database": _check_database(runtime),
        **{name: check() for name, check in runtime.readiness_checks.items()},
    }
    results = await _run_checks(checks)
    if results["database"] == "ok":
        results.update(await _run_checks({"migrations": _check_migrations(runtime)}))
    return results


async def _run_checks(checks: Mapping[str, Awaitable[object]]) -> dict[str, str]:
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check, READINESS_TIMEOUT_SECONDS)
            results[name] = "ok"
        except MigrationsPending as exc:
            results[name] = f"{exc}; run `shopkeeper migrate`"
        except Exception as exc:  # any failure means "not ready"; the reason is for operators
            results[name] = f"{type(exc).__name__}: {exc}"[:200] or "failed"
    return results


async def _check_database(runtime: Runtime) -> None:
    async with runtime.db.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check_migrations(runtime: Runtime) -> None:
    async with runtime.db.engine.connect() as connection:
        await check_migrated(connection)


@router.get("/health/live")
async def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    responses={
        503: {
            "description": "A dependency is down, or migrations are pending; `failed` names "
            "which (`database`, `migrations`, ...) and `checks` says why"
        }
    },
)
async def ready(runtime: AppRuntime, response: Response) -> dict[str, object]:
    results = await check_dependencies(runtime)
    failed = sorted(name for name, result in results.items() if result != "ok")
    if failed:
        response.status_code = 503
        return {"status": "unavailable", "failed": failed, "checks": results}
    return {"status": "ok", "checks": results}


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics() -> Response:
    payload, content_type = metrics_payload()
    return Response(payload, media_type=content_type)
