"""The ASGI application: `create_app(settings)` wires routers, middleware and the lifespan."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from shopkeeper import __version__
from shopkeeper.accounts import service as users_service
from shopkeeper.accounts.api import router as users_router
from shopkeeper.core.errors import install_error_handlers
from shopkeeper.core.health import router as health_router
from shopkeeper.core.inputs import InputValidationMiddleware
from shopkeeper.core.observability import (
    BodySizeLimitMiddleware,
    RequestContextMiddleware,
    configure_logging,
)
from shopkeeper.core.openapi import install_truthful_openapi
from shopkeeper.core.pages import router as pages_router
from shopkeeper.core.response_cache import CachedReadsApp
from shopkeeper.core.runtime import Runtime
from shopkeeper.core.settings import Settings, get_settings
from shopkeeper.crawl.api import router as crawl_router
from shopkeeper.crawl.lifespan import crawl_lifespan
from shopkeeper.crawl.ui.api import install_ui as install_crawl_ui
from shopkeeper.shop.admin import mount_admin
from shopkeeper.shop.carts import service as carts_service
from shopkeeper.shop.carts.api import router as carts_router
from shopkeeper.shop.catalog.api import router as catalog_router
from shopkeeper.shop.inventory.api import router as inventory_router
from shopkeeper.shop.orders.api import router as orders_router
from shopkeeper.shop.payments.api import router as payments_router
from shopkeeper.shop.promotions.api import router as promotions_router
from shopkeeper.shop.shipping.api import router as shipping_router

API_PREFIX = "/api/v1"
# What a browser script on an allowed origin may read of our answers besides the simple ones.
CORS_EXPOSED_HEADERS = ["ETag", "Location", "Retry-After", "X-Cart-Token", "X-Request-ID"]

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> FastAPI:
    settings = settings or (runtime.settings if runtime else get_settings())
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        active = runtime or Runtime.build(settings)
        app.state.runtime = active
        app.state.db = active.db
        await active.cache.start()
        await _bootstrap_admin(active)
        if owned:
            try:
                await active.db.warm_up()
            except Exception as exc:  # a database that is down now is readiness's to report
                log.warning("database_warm_up_failed", error=str(exc))
            # What startup built lives as long as the process: frozen, it is left out of the
            # collector's full passes, which otherwise scan ~160,000 startup objects and paused a
            # worker for 125 ms at a time under the search bench (gc.callbacks probe).
            gc.collect()
            gc.freeze()
        try:
            async with _logs_system(app, settings), active.running(), crawl_lifespan(app, active):
                yield
        finally:
            if owned:
                await active.close()

    app = CachedReadsApp(
        title="shopkeeper",
        version=__version__,
        summary="E-commerce backend: catalog, inventory, carts, checkout, orders, payments.",
        lifespan=lifespan,
        # Served by core.pages from the vendored copies: no CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sign_in_hooks = [carts_service.merge_cart_at_sign_in]
    install_error_handlers(app)
    install_truthful_openapi(app)
    # Checkout's router first: routes are tried in order, and FastAPI's check of one that does
    # not match costs ~15,000 instructions (two scope-key writes and a path regex; the routes
    # of an included router are matched twice). Behind the ~45 routes before it, checkout paid
    # ~0.75 M instructions per order, 7% of the order (bench/RESULTS.md, issue 16). No other
    # router serves a path these routes match, so the order changes no request's route.
    app.include_router(orders_router, prefix=API_PREFIX)
    app.include_router(health_router)
    app.include_router(pages_router)
    for router in (
        users_router,
        catalog_router,
        inventory_router,
        carts_router,
        payments_router,
        promotions_router,
        shipping_router,
    ):
        app.include_router(router, prefix=API_PREFIX)
    exempt: tuple[str, ...] = ()
    if settings.logs_enabled:
        from shopkeeper.logs.api import router as logs_router
        from shopkeeper.logs.ui.api import install_ui

        app.include_router(logs_router, prefix=API_PREFIX)
        install_ui(app)  # the web UI at /logs
        exempt = (f"{API_PREFIX}/logs/",)  # ingest enforces its own, larger limit
    if settings.crawl_enabled:
        app.include_router(crawl_router, prefix=API_PREFIX)
        install_crawl_ui(app)  # the web UI at /crawl
    mount_admin(app, settings)
    # Vendored scripts and styles of the pages (htmx, uPlot, Swagger UI): no CDN, no build step.
    app.mount("/static", StaticFiles(packages=[("shopkeeper", "static")]), name="static")
    # Inside the body size limit, which bounds what it buffers. Webhooks audit their own input;
    # log ingest keeps every line as sent (a line it cannot parse is stored raw with the reason).
    app.add_middleware(
        InputValidationMiddleware,
        exempt_prefixes=(f"{API_PREFIX}/payments/webhooks/", f"{API_PREFIX}/logs/"),
    )
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes, exempt_prefixes=exempt
    )
    app.add_middleware(RequestContextMiddleware)
    if settings.cors_origins:
        # Outermost, so that preflights and error answers carry the CORS headers too.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
        app.answer_cached_for_cors = False
    # A cached public read is answered before anything else runs (see core.response_cache).
    app.cached_prefixes = (f"{API_PREFIX}/products", f"{API_PREFIX}/categories")
    return app


@asynccontextmanager
async def _logs_system(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The logs system's storage and writer, and this process's own logs shipped into it. A
    store that cannot open (its chDB directory owned by another process) leaves the shop
    serving and the logs endpoints answering 503."""
    if not settings.logs_enabled:
        yield
        return
    from shopkeeper.logs.runtime import logs_running

    try:
        running = logs_running(settings)
        logs = await running.__aenter__()
    except Exception as exc:
        log.warning("logs_storage_unavailable", error=str(exc))
        yield
        return
    app.state.logs = logs
    try:
        yield
    finally:
        await running.__aexit__(None, None, None)


async def _bootstrap_admin(runtime: Runtime) -> None:
    settings = runtime.settings
    if not (settings.admin_email and settings.admin_password):
        return
    async with runtime.db.session() as session:
        created = await users_service.ensure_staff_user(
            session, email=settings.admin_email, password=settings.admin_password.get_secret_value()
        )
    if created:
        log.info("admin_created", email=settings.admin_email)
