"""Which handlers react to which events: `@handles(OrderPaid)` registers a handler under its
module-qualified name (its key in `processed_events` and in broker jobs, so keep it stable),
and the event class under its name, so that the dispatcher can rebuild the event.

A handler is `async def f(ctx, event: OrderPaid) -> None`. The context is whatever the runtime
that dispatches makes for the handler's session (`core.runtime.HandlerContext`); this registry
does not need to know its type.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, TypeVar

from shopkeeper.core.messaging.events import event_name

E = TypeVar("E")
C = TypeVar("C")

EventHandler = Callable[[Any, Any], Awaitable[None]]
"""A registered handler: (context, event) -> None, types erased."""

_HANDLERS: dict[str, dict[str, EventHandler]] = {}
_EVENT_TYPES: dict[str, type] = {}


class DuplicateEventName(TypeError):
    """Two event classes share a name: their stored events would be indistinguishable."""


def handles(
    event_type: type[E],
) -> Callable[[Callable[[C, E], Awaitable[None]]], Callable[[C, E], Awaitable[None]]]:
    """Register the decorated `async def handler(ctx, event: event_type)`."""
    register_event_type(event_type)

    def register(handler: Callable[[C, E], Awaitable[None]]) -> Callable[[C, E], Awaitable[None]]:
        key = f"{handler.__module__}.{handler.__qualname__}"
        _HANDLERS.setdefault(event_name(event_type), {})[key] = handler
        return handler

    return register


def register_event_type(event_type: type) -> None:
    name = event_name(event_type)
    known = _EVENT_TYPES.setdefault(name, event_type)
    if known is not event_type:
        raise DuplicateEventName(
            f"event name {name!r}: {known.__module__}.{known.__qualname__} and "
            f"{event_type.__module__}.{event_type.__qualname__}"
        )


def event_type_named(name: str) -> type | None:
    return _EVENT_TYPES.get(name)


def handlers_for(name: str) -> dict[str, EventHandler]:
    return dict(_HANDLERS.get(name, {}))


def handler_named(key: str) -> EventHandler | None:
    """The handler registered under `key` (its module-qualified name), if this process has it."""
    for handlers in _HANDLERS.values():
        if key in handlers:
            return handlers[key]
    return None


def registered_event_names() -> list[str]:
    return sorted(name for name, handlers in _HANDLERS.items() if handlers)


def load_handlers(root: ModuleType | None = None) -> None:
    """Import every `handlers` and `jobs` module under `root` (default: the `shopkeeper`
    package) so that their registrations exist. No system is named here: systems hold domains
    (`shopkeeper.shop.orders.handlers`, `shopkeeper.accounts.handlers`, ...) and are found by
    walking the package tree. `core` registers its own (e-mail) by being imported."""
    package = root if root is not None else importlib.import_module("shopkeeper")
    prefix = f"{package.__name__}."
    for module in pkgutil.walk_packages(package.__path__, prefix):
        if module.name.split(".")[-1] not in {"handlers", "jobs"}:
            continue
        if module.name.startswith((f"{prefix}core.", f"{prefix}migrations.")):
            continue
        importlib.import_module(module.name)
