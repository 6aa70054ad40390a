"""Built-in roles: named sets of permissions. A permission is `<system>:<action>`."""

from __future__ import annotations

from collections.abc import Iterable

PERMISSIONS: frozenset[str] = frozenset(
    {
        "shop:read",
        "shop:write",
        "payments:refund",
        "logs:read",
        "logs:write",
        "logs:admin",
        "crawl:read",
        "crawl:write",
        "crawl:worker",
        "accounts:admin",
    }
)
"""Everything a role grants or a key's scope can name."""

ROLES: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS,
    "shop_staff": frozenset({"shop:read", "shop:write", "payments:refund"}),
    # Sees the shop's back office (orders, stock, payments) and changes nothing.
    "shop_viewer": frozenset({"shop:read"}),
    "log_reader": frozenset({"logs:read"}),
    "log_admin": frozenset({"logs:read", "logs:admin"}),
    "crawl_viewer": frozenset({"crawl:read"}),
    "crawl_operator": frozenset({"crawl:read", "crawl:write"}),
}


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLES.get(role, frozenset())
    return frozenset(granted)


def unknown_roles(roles: Iterable[str]) -> list[str]:
    return sorted(set(roles) - ROLES.keys())


def unknown_scopes(scopes: Iterable[str]) -> list[str]:
    return sorted(set(scopes) - PERMISSIONS)
