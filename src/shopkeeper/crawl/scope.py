"""Which URLs a crawl may fetch: allowed hosts or URL prefixes, denied prefixes or patterns, depth.

Rules are compared with canonical URLs, so `HTTP://Shop.example:80/a` and `http://shop.example/a`
are the same for scope as for dedup. A calendar or session-id trap of endless distinct URLs is
stopped here: by a deny pattern, or at the latest by `max_depth` (every page of a trap is one link
deeper than the page that linked it). `max_pages` is counted by the frontier's caller.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from shopkeeper.crawl.canonical import InvalidURL, canonicalize, host_and_port


@dataclass(frozen=True, slots=True)
class _HostRule:
    host: str
    port: int | None

    def matches(self, canonical_url: str) -> bool:
        host, port = host_and_port(canonical_url)
        return host == self.host and (self.port is None or port == self.port)


@dataclass(frozen=True, slots=True)
class Scope:
    allow: tuple[str, ...]
    deny: tuple[str, ...] = ()
    max_depth: int | None = None
    _allow_hosts: tuple[_HostRule, ...] = ()
    _allow_prefixes: tuple[str, ...] = ()
    _deny_prefixes: tuple[str, ...] = ()
    _deny_paths: tuple[str, ...] = ()
    _deny_patterns: tuple[re.Pattern[str], ...] = ()

    @classmethod
    def from_rules(
        cls, *, allow: Sequence[str], deny: Sequence[str] = (), max_depth: int | None = None
    ) -> Scope:
        """Compile the rules once; raises ValueError on an empty allow list or a bad rule."""
        if not allow:
            raise ValueError("scope.allow needs at least one host or URL prefix")
        if max_depth is not None and max_depth < 0:
            raise ValueError("scope.max_depth must be 0 or more")
        hosts: list[_HostRule] = []
        prefixes: list[str] = []
        for rule in allow:
            if "://" in rule:
                prefixes.append(_canonical_prefix(rule))
            else:
                hosts.append(_host_rule(rule))
        deny_prefixes: list[str] = []
        deny_paths: list[str] = []
        patterns: list[re.Pattern[str]] = []
        for rule in deny:
            if rule.startswith("^"):
                try:
                    # Searched, not anchored: `^` only marks the rule as a pattern.
                    patterns.append(re.compile(rule[1:]))
                except re.error as exc:
                    raise ValueError(f"scope.deny: bad pattern {rule!r}: {exc}") from exc
            elif rule.startswith("/"):
                deny_paths.append(rule)
            else:
                deny_prefixes.append(_canonical_prefix(rule))
        return cls(
            allow=tuple(allow),
            deny=tuple(deny),
            max_depth=max_depth,
            _allow_hosts=tuple(hosts),
            _allow_prefixes=tuple(prefixes),
            _deny_prefixes=tuple(deny_prefixes),
            _deny_paths=tuple(deny_paths),
            _deny_patterns=tuple(patterns),
        )

    def allows(self, canonical_url: str) -> bool:
        """Allowed and not denied, whatever the depth (redirect hops are checked with this)."""
        if not (
            any(rule.matches(canonical_url) for rule in self._allow_hosts)
            or canonical_url.startswith(self._allow_prefixes)
        ):
            return False
        if canonical_url.startswith(self._deny_prefixes):
            return False
        if self._deny_paths and urlsplit(canonical_url).path.startswith(self._deny_paths):
            return False
        return not any(pattern.search(canonical_url) for pattern in self._deny_patterns)

    def admits(self, canonical_url: str, depth: int) -> bool:
        """Whether a link found at `depth` (seeds are 0) is to be fetched."""
        if self.max_depth is not None and depth > self.max_depth:
            return False
        return self.allows(canonical_url)


def _host_rule(rule: str) -> _HostRule:
    try:
        parts = urlsplit(f"http://{rule.strip()}")
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"scope.allow: bad host {rule!r}: {exc}") from exc
    if not parts.hostname or parts.path not in {"", "/"}:
        raise ValueError(f"scope.allow: {rule!r} is neither host[:port] nor a URL prefix")
    return _HostRule(parts.hostname.lower(), port)


def _canonical_prefix(rule: str) -> str:
    # A bare "http://shop.example" becomes "http://shop.example/", which is what keeps it from
    # matching "http://shop.example.evil.test/".
    try:
        return canonicalize(rule)
    except InvalidURL as exc:
        raise ValueError(f"scope: bad URL prefix {rule!r}") from exc
