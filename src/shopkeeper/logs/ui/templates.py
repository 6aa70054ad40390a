"""The Jinja templates of the logs UI (`src/shopkeeper/templates/logs/`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from shopkeeper.logs.query.results import format_value

TEMPLATES = Jinja2Templates(directory=Path(__file__).resolve().parents[2] / "templates")
# Numbers as Loki prints them: 13, not 13.0.
TEMPLATES.env.filters["number"] = format_value


def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    return TEMPLATES.TemplateResponse(request, name, context, status_code=status)
