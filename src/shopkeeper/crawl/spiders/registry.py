"""Which spiders this deploy has: the spiders file's tables, each handed to its kind, plus what
each kind discovers by itself (`python`: entry points in the group `shopkeeper.spiders`).

The spiders file (`SHOPKEEPER_CRAWL_SPIDERS_FILE`) is TOML, one table per spider:

    [spiders.books]
    kind = "command"
    description = "Books, through the API"
    command = ["python", "-m", "myspiders.books"]
    start_urls = ["https://books.toscrape.com/"]
    scope = {allow = ["books.toscrape.com"]}
    politeness = {delay_ms = 1000}

A name in the file wins over a discovered spider of the same name.
"""

from __future__ import annotations

import importlib
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from shopkeeper.crawl.spiders.base import SpiderKind, SpiderSpec

log = structlog.get_logger(__name__)

KIND_PATHS: dict[str, str] = {
    "python": "shopkeeper.crawl.spiders.python:PythonKind",
    "command": "shopkeeper.crawl.spiders.command:CommandKind",
    "scrapy": "shopkeeper.crawl.scrapy.kind:ScrapyKind",
}
"""kind name -> "module:Class" of its `SpiderKind` (instantiated without arguments)."""

_KINDS: dict[str, SpiderKind] = {}


class UnknownSpider(LookupError):
    pass


def kind(name: str) -> SpiderKind | None:
    """The kind named `name`, None when this deploy does not have it (module not installed)."""
    if name in _KINDS:
        return _KINDS[name]
    path = KIND_PATHS.get(name)
    if path is None:
        return None
    module_name, _, class_name = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        return None
    instance: SpiderKind = getattr(module, class_name)()
    _KINDS[name] = instance
    return instance


def register_kind(instance: SpiderKind) -> None:
    """Add a kind at run time (tests, plug-ins that are not in `KIND_PATHS`)."""
    _KINDS[instance.name] = instance


def spiders(spiders_file: Path | None) -> dict[str, SpiderSpec]:
    found: dict[str, SpiderSpec] = {}
    for name in KIND_PATHS:
        spider_kind = kind(name)
        if spider_kind is None:
            continue
        for spec in spider_kind.discover():
            found[spec.name] = spec
    for name, entry in _file_entries(spiders_file).items():
        kind_name = str(entry.get("kind", ""))
        spider_kind = kind(kind_name)
        if spider_kind is None:
            log.warning("crawl_spider_kind_unknown", spider=name, kind=kind_name)
            continue
        try:
            found[name] = spider_kind.from_config(name, entry)
        except (ValueError, TypeError) as exc:
            log.warning("crawl_spider_invalid", spider=name, error=str(exc))
    return dict(sorted(found.items()))


def spider(spiders_file: Path | None, name: str) -> SpiderSpec:
    found = spiders(spiders_file).get(name)
    if found is None:
        raise UnknownSpider(name)
    return found


def _file_entries(path: Path | None) -> dict[str, Mapping[str, Any]]:
    if path is None:
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        log.warning("crawl_spiders_file_unreadable", path=str(path), error=str(exc))
        return {}
    table = data.get("spiders", {})
    return {str(k): v for k, v in table.items() if isinstance(v, Mapping)}
