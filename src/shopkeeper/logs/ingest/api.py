"""Every ingest protocol's router, in one."""

from __future__ import annotations

from fastapi import APIRouter

from shopkeeper.logs.ingest.ndjson import router as ndjson_router

router = APIRouter()
router.include_router(ndjson_router)
