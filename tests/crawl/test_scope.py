from __future__ import annotations

import pytest

from shopkeeper.crawl.canonical import canonicalize
from shopkeeper.crawl.scope import Scope


def test_host_rule_allows_every_port_unless_one_is_given() -> None:
    scope = Scope.from_rules(allow=["shop.example", "127.0.0.2:8080"])
    assert scope.allows("http://shop.example/a")
    assert scope.allows("https://shop.example:8443/a")
    assert scope.allows("http://127.0.0.2:8080/a")
    assert not scope.allows("http://127.0.0.2:8081/a")
    assert not scope.allows("http://other.example/a")
    assert not scope.allows("http://shop.example.evil.test/a")


def test_url_prefix_rule() -> None:
    scope = Scope.from_rules(allow=["HTTP://Shop.Example:80/products/"])
    assert scope.allows(canonicalize("http://shop.example/products/1"))
    assert not scope.allows(canonicalize("http://shop.example/about"))


def test_bare_origin_prefix_does_not_match_a_longer_host() -> None:
    scope = Scope.from_rules(allow=["http://shop.example"])
    assert scope.allows("http://shop.example/x")
    assert not scope.allows("http://shop.example.evil.test/x")


def test_deny_prefix_path_and_pattern() -> None:
    scope = Scope.from_rules(
        allow=["shop.example"],
        deny=["http://shop.example/private/", "/cart", r"^[?&]sessionid="],
    )
    assert scope.allows("http://shop.example/products/1")
    assert not scope.allows("http://shop.example/private/a")
    assert not scope.allows("http://shop.example/cart/3")
    assert not scope.allows("http://shop.example/p?a=1&sessionid=9")


def test_deny_pattern_is_searched_not_anchored() -> None:
    scope = Scope.from_rules(allow=["shop.example"], deny=[r"^/calendar/\d{4}/"])
    assert not scope.allows("http://shop.example/calendar/2031/07")
    assert scope.allows("http://shop.example/calendar/")


def test_depth() -> None:
    scope = Scope.from_rules(allow=["shop.example"], max_depth=2)
    assert scope.admits("http://shop.example/a", 0)
    assert scope.admits("http://shop.example/a", 2)
    assert not scope.admits("http://shop.example/a", 3)
    assert not scope.admits("http://other.example/a", 0)
    assert Scope.from_rules(allow=["shop.example"]).admits("http://shop.example/a", 10_000)


def test_calendar_trap_ends_at_max_depth() -> None:
    """Following "next month" forever: each step is one level deeper, so the walk stops."""
    scope = Scope.from_rules(allow=["shop.example"], max_depth=5)
    year, month, depth, fetched = 2026, 1, 0, 0
    while scope.admits(f"http://shop.example/calendar/{year}/{month:02d}", depth):
        fetched += 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        depth += 1
    assert fetched == 6


@pytest.mark.parametrize(
    ("allow", "deny", "max_depth"),
    [([], [], None), (["shop.example/path"], [], None), (["a"], ["^("], None), (["a"], [], -1)],
)
def test_bad_rules_are_refused(allow: list[str], deny: list[str], max_depth: int | None) -> None:
    with pytest.raises(ValueError):
        Scope.from_rules(allow=allow, deny=deny, max_depth=max_depth)
