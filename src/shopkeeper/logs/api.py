"""The logs system's HTTP API, mounted under `/api/v1/logs`: the ingest protocols and the
Loki-compatible query API."""

from __future__ import annotations

import importlib

from fastapi import APIRouter

from shopkeeper.logs.ingest.api import router as ingest_router

PREFIX = "/logs"

router = APIRouter(prefix=PREFIX)
router.include_router(ingest_router)

# Parts built beside ingest join when present (the query API, the syslog/buffer status).
for _module in ("shopkeeper.logs.query.api", "shopkeeper.logs.alerts.api"):
    try:
        router.include_router(importlib.import_module(_module).router)
    except ModuleNotFoundError as exc:
        if exc.name is None or not _module.startswith(exc.name):
            raise
