"""The pages around the API: `/` (where everything is), Swagger UI at `/docs` and ReDoc at
`/redoc`, both from the copies vendored under `/static/vendor`, so they work offline."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse, JSONResponse, Response

from shopkeeper import __version__

router = APIRouter(include_in_schema=False)

TITLE = "shopkeeper"
VENDOR = "/static/vendor"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"

# The docs pages may load nothing from elsewhere: ReDoc's bundle names a logo on its CDN, which
# the browser then does not even request. Inline scripts and styles are the pages' own.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)

_templates = Environment(
    loader=PackageLoader("shopkeeper", "templates"), autoescape=select_autoescape()
)


@dataclass(frozen=True, slots=True)
class Link:
    title: str
    href: str
    description: str


LINKS = (
    Link("API", "/api/v1", "the REST API (JSON; errors are application/problem+json)"),
    Link("API docs", "/docs", "Swagger UI: every operation, tried out in the browser"),
    Link("API reference", "/redoc", "ReDoc: the same contract, for reading"),
    Link("OpenAPI", "/openapi.json", "the machine-readable contract"),
    Link("Admin", "/admin", "the shop's back office (staff sign-in)"),
    Link("Health", "/health/ready", "readiness of the database and the other services"),
)


@router.get("/")
async def home(request: Request) -> Response:
    """Where everything is: HTML for a browser, JSON for anything else."""
    if "text/html" in request.headers.get("accept", ""):
        page = _templates.get_template("pages/home.html").render(
            title=TITLE, version=__version__, links=LINKS
        )
        return HTMLResponse(page)
    return JSONResponse(
        {
            "name": TITLE,
            "version": __version__,
            "links": {link.title.lower().replace(" ", "_"): asdict(link) for link in LINKS},
        }
    )


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _self_contained(
        get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{TITLE} — API docs",
            swagger_js_url=f"{VENDOR}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{VENDOR}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
            # Swagger UI would otherwise send the document to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _self_contained(
        get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{TITLE} — API reference",
            redoc_js_url=f"{VENDOR}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{VENDOR}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )
    )


def _self_contained(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page
