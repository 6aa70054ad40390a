"""The OpenAPI document, made to say what the application does.

FastAPI's defaults disagree with our behaviour in a few places, all fixed here once rather than
per route: every error response is `application/problem+json` (including the 422 FastAPI adds by
itself as `application/json`), headers whose dependency refuses their absence are `required`,
operations that read a body document the 400 a body that cannot be parsed gets, and every API
operation documents the 503 it answers while the database is down or not migrated.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shopkeeper.core.errors import PROBLEM_CONTENT_TYPE

REQUIRED_MARKER = "x-shopkeeper-required"
"""Put in a `Header(json_schema_extra=...)` whose dependency answers an error when it is absent
(the document then lists it as required, which FastAPI cannot know)."""

_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def install_truthful_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            _make_truthful(document)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _make_truthful(document: dict[str, Any]) -> None:
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    components.setdefault(
        "Problem",
        {
            "type": "object",
            "title": "Problem",
            "required": ["type", "title", "status", "detail"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
            },
        },
    )
    for path, methods in document.get("paths", {}).items():
        for operation in methods.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.pop(REQUIRED_MARKER, False):
                    parameter["required"] = True
                    options = [s for s in schema.pop("anyOf", []) if s.get("type") != "null"]
                    if options:
                        schema.update(options[0])
            responses = operation["responses"]
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = {
                    "description": "Malformed request: a body that cannot be parsed",
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}},
                }
            if path.startswith("/api/") and "503" not in responses:
                responses["503"] = {
                    "description": "`database-unavailable` (retry after `Retry-After`) or "
                    "`migrations-pending` (the database is behind this version)",
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": _PROBLEM_REF}},
                }
            for status, response in responses.items():
                if not status.isdigit() or int(status) < 400:
                    continue
                content = response.get("content", {})
                schema = next((media.get("schema") for media in content.values()), None)
                if not schema or schema.get("$ref", "").endswith("HTTPValidationError"):
                    schema = _PROBLEM_REF
                response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": schema}}
