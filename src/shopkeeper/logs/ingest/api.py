"""Every ingest protocol's router, in one."""

from __future__ import annotations

from fastapi import APIRouter

from shopkeeper.logs.ingest.elasticsearch import router as elasticsearch_router
from shopkeeper.logs.ingest.loki import router as loki_router
from shopkeeper.logs.ingest.ndjson import router as ndjson_router
from shopkeeper.logs.ingest.otlp import router as otlp_router

router = APIRouter()
router.include_router(ndjson_router)
router.include_router(loki_router)
router.include_router(elasticsearch_router)
router.include_router(otlp_router)
