from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.crawl.canonical import (
    InvalidURL,
    authority,
    canonicalize,
    fingerprint,
    new_url,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("HTTP://Shop.Example.COM/a", "http://shop.example.com/a"),
        ("http://shop.example:80/a", "http://shop.example/a"),
        ("https://shop.example:443/a", "https://shop.example/a"),
        ("http://shop.example:8080/a", "http://shop.example:8080/a"),
        ("https://shop.example:80/a", "https://shop.example:80/a"),
        ("http://shop.example/a#reviews", "http://shop.example/a"),
        ("http://shop.example/a?b=2&a=1", "http://shop.example/a?a=1&b=2"),
        ("http://shop.example", "http://shop.example/"),
        ("http://shop.example/a b", "http://shop.example/a%20b"),
        ("http://user:pw@shop.example/a", "http://shop.example/a"),
        ("http://[::1]:80/a", "http://[::1]/a"),
        ("http://[::1]:8080/a", "http://[::1]:8080/a"),
    ],
)
def test_canonical_form(raw: str, expected: str) -> None:
    assert canonicalize(raw) == expected


def test_tracking_parameters_are_removed_and_others_kept() -> None:
    url = (
        "http://shop.example/p?utm_source=news&id=7&UTM_Medium=mail&gclid=abc&fbclid=x"
        "&mc_cid=1&mc_eid=2&msclkid=3&_ga=4&color=red"
    )
    assert canonicalize(url) == "http://shop.example/p?color=red&id=7"


def test_query_made_only_of_tracking_parameters_disappears() -> None:
    assert canonicalize("http://shop.example/p?utm_source=a&utm_campaign=b") == (
        "http://shop.example/p"
    )


def test_duplicates_share_one_fingerprint() -> None:
    variants = [
        "http://shop.example/p/1?utm_source=x",
        "HTTP://SHOP.EXAMPLE:80/p/1#top",
        "http://shop.example/p/1?fbclid=123",
    ]
    assert len({fingerprint(canonicalize(url)) for url in variants}) == 1
    assert fingerprint(canonicalize("http://shop.example/p/2")) != fingerprint(
        canonicalize("http://shop.example/p/1")
    )


@given(st.text(min_size=0, max_size=200))
def test_fingerprint_is_a_signed_64_bit_int(text: str) -> None:
    value = fingerprint(text)
    assert -(2**63) <= value < 2**63


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "utm_x", "gclid"]), st.text("xyz09", max_size=3)),
        max_size=6,
    )
)
def test_canonicalisation_is_idempotent_and_order_free(params: list[tuple[str, str]]) -> None:
    query = "&".join(f"{k}={v}" for k, v in params)
    reversed_query = "&".join(f"{k}={v}" for k, v in reversed(params))
    once = canonicalize(f"http://shop.example/p?{query}")
    assert canonicalize(once) == once
    assert canonicalize(f"http://shop.example/p?{reversed_query}") == once
    assert "utm_" not in once and "gclid" not in once


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://Shop.Example/a", "shop.example:80"),
        ("https://shop.example/a", "shop.example:443"),
        ("http://127.0.0.2:8080/a", "127.0.0.2:8080"),
        ("https://[::1]/", "[::1]:443"),
    ],
)
def test_authority_has_an_explicit_port(url: str, expected: str) -> None:
    assert authority(url) == expected


@pytest.mark.parametrize(
    "url", ["ftp://shop.example/a", "/relative/path", "mailto:a@b.c", "http://", "http://h:99999/"]
)
def test_non_http_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidURL):
        canonicalize(url)


def test_new_url_carries_what_the_frontier_needs() -> None:
    parts = new_url("http://127.0.0.2:8080/a?utm_source=x#f", depth=2)
    assert parts.url == "http://127.0.0.2:8080/a"
    assert parts.fingerprint == fingerprint(parts.url)
    assert parts.host == "127.0.0.2:8080"
    assert parts.depth == 2


_simple_paths = st.lists(
    st.text("abcXYZ019._~-", min_size=0, max_size=6), min_size=0, max_size=4
).map(lambda parts: "/" + "/".join(parts))


@given(
    st.sampled_from(["http", "https"]),
    st.sampled_from(["shop.example", "127.0.0.2", "a-b.c0", "x"]),
    st.one_of(st.none(), st.integers(0, 70000)),
    st.one_of(st.just(""), _simple_paths),
)
def test_fast_path_agrees_with_w3lib(scheme: str, host: str, port: int | None, path: str) -> None:
    from shopkeeper.crawl.canonical import _canonicalize_fully

    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    try:
        expected = _canonicalize_fully(url)
    except InvalidURL:
        with pytest.raises(InvalidURL):
            canonicalize(url)
        return
    assert canonicalize(url) == expected
    assert new_url(url, 0).host == authority(expected)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://shop.example/a", ("shop.example", 80)),
        ("https://shop.example:8443/a:b", ("shop.example", 8443)),
        ("http://[::1]:8080/", ("::1", 8080)),
        ("https://[::1]/", ("::1", 443)),
    ],
)
def test_host_and_port_of_canonical_urls(url: str, expected: tuple[str, int]) -> None:
    from shopkeeper.crawl.canonical import host_and_port

    assert host_and_port(canonicalize(url)) == expected


_url_pieces = st.sampled_from(
    ["a", "X", "0", "-", ".", "_", "~", ":", "/", "?", "#", "[", "]", "@", "!", "&", "=", "%",
     " ", "é", "中", "\\\\", "xn--", "..", "%zz", "%41", "[::1]", ":99999", ":0", "http://"]
)  # fmt: skip


@given(st.lists(_url_pieces, max_size=12).map("".join), st.sampled_from(["http://", "HTTPS://"]))
def test_any_link_canonicalises_or_is_refused(tail: str, scheme: str) -> None:
    """A page's links are arbitrary text: the only exception is InvalidURL, and the canonical
    form is a fixed point."""
    try:
        parts = new_url(scheme + tail, 0)
    except InvalidURL:
        return
    assert canonicalize(parts.url) == parts.url
    assert parts.host == authority(parts.url)


def test_w3lib_refusals_become_invalid_url() -> None:
    with pytest.raises(InvalidURL):
        canonicalize("http://[::1]@]")
