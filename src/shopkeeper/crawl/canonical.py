"""Canonical URLs, their 64-bit fingerprints and their host authorities.

Two links that reach the same page must canonicalise to the same string, or the frontier fetches
the page twice: w3lib's `canonicalize_url` sorts and re-encodes the query and drops the fragment;
on top of it we lower-case the scheme and host, drop the scheme's default port and remove tracking
parameters, which never change what a server answers.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

DEFAULT_PORTS = {"http": 80, "https": 443}

# Click and campaign identifiers added by ad networks and mailers; `utm_*` is matched by prefix.
TRACKING_PARAMS = frozenset(
    {
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "fbclid",
        "msclkid",
        "yclid",
        "ttclid",
        "twclid",
        "igshid",
        "li_fat_id",
        "mc_cid",
        "mc_eid",
        "mkt_tok",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "rb_clickid",
        "s_cid",
        "ef_id",
        "srsltid",
    }
)
TRACKING_PREFIXES = ("utm_", "hsa_")


class InvalidURL(ValueError):
    """Not an absolute http(s) URL with a host."""


class NewURLParts(NamedTuple):
    """The fields of `frontier.NewURL`, computed once from a discovered link."""

    url: str
    fingerprint: int
    host: str
    depth: int


# URLs already in canonical form but for the port: lower-case http(s) and host, a path of
# unreserved characters without dot segments, no query, no fragment. Most links a crawler meets
# look like this, and w3lib's full treatment costs ten times more than this check.
_SIMPLE = re.compile(
    r"(https?)://([a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::([0-9]{1,5}))?(/[A-Za-z0-9._~/-]*)?"
)


def canonicalize(url: str) -> str:
    simple = _SIMPLE.fullmatch(url)
    if simple is not None and "/." not in (simple[4] or ""):
        scheme, host, port, path = simple.groups()
        if port is None or int(port) == DEFAULT_PORTS[scheme]:
            return f"{scheme}://{host}{path or '/'}"
        if int(port) <= 65535:
            return f"{scheme}://{host}:{int(port)}{path or '/'}"
    return _canonicalize_fully(url)


def _canonicalize_fully(url: str) -> str:
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc = f"{netloc}:{port}"
    # User info never identifies a page, and keeping it would leak credentials into the store.
    query = "&".join(pair for pair in parts.query.split("&") if pair and not _is_tracking(pair))
    try:
        return canonicalize_url(urlunsplit((scheme, netloc, parts.path or "/", query, "")))
    except ValueError as exc:  # w3lib's own parser refuses some hosts urllib accepted
        raise InvalidURL(f"not a valid URL: {url!r} ({exc})") from exc


def fingerprint(canonical_url: str) -> int:
    """A signed 64-bit integer (fits BIGINT columns and Redis integer sets)."""
    digest = hashlib.blake2b(canonical_url.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def authority(url: str) -> str:
    """`host:port` with the port always explicit: politeness is per authority."""
    parts = _split(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port is not None else DEFAULT_PORTS[scheme]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def host_and_port(canonical_url: str) -> tuple[str, int]:
    """Host (IPv6 without brackets) and port of a URL `canonicalize` returned, without parsing
    it again: canonical URLs have no user info and always a path."""
    scheme, _, rest = canonical_url.partition("://")
    netloc = rest.split("/", 1)[0]
    if netloc.startswith("["):
        host, _, tail = netloc[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") else DEFAULT_PORTS[scheme]
    host, _, port = netloc.partition(":")
    return host, int(port) if port else DEFAULT_PORTS[scheme]


def new_url(url: str, depth: int) -> NewURLParts:
    canonical = canonicalize(url)
    return NewURLParts(canonical, fingerprint(canonical), _canonical_authority(canonical), depth)


def _canonical_authority(canonical_url: str) -> str:
    simple = _SIMPLE.fullmatch(canonical_url)
    if simple is None:
        return authority(canonical_url)
    scheme, host, port, _ = simple.groups()
    return f"{host}:{port or DEFAULT_PORTS[scheme]}"


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number in range
    except ValueError as exc:
        raise InvalidURL(f"not a valid URL: {url!r} ({exc})") from exc
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise InvalidURL(f"not an absolute http(s) URL: {url!r}")
    return parts


def _is_tracking(pair: str) -> bool:
    name = unquote(pair.partition("=")[0]).lower()
    return name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES)
