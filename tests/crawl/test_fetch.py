"""The fetcher against the local site (and a few raw servers for what the site cannot do)."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import brotli
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shopkeeper.core.settings import Settings
from shopkeeper.crawl.fetch import Fetcher, FetchError, is_public_address
from shopkeeper.crawl.scope import Scope
from tests.support.crawl_site import CrawlSite

UA = "shopkeeper-crawler/1.0 (+test)"


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(user_agent=UA, allow_private=True, timeout_s=2.0) as client:
        yield client


async def test_page_with_user_agent_and_type(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    result = await fetcher.fetch(crawl_site.url("shop", "/product/1"))
    assert result.ok and result.status == 200 and result.error is None
    assert result.is_html
    assert b"Product 1" in result.body
    [request] = crawl_site.requests("shop")
    assert request.user_agent == UA


async def test_connections_are_reused(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    for i in range(5):
        assert (await fetcher.fetch(crawl_site.url("bench", f"/b/{i}"))).ok
    assert len({r.client for r in crawl_site.requests("bench")}) == 1


async def test_concurrent_fetches_spread_over_pools(crawl_site: CrawlSite) -> None:
    async with Fetcher(user_agent=UA, allow_private=True, max_connections=32) as fetcher:
        results = await asyncio.gather(
            *(fetcher.fetch(crawl_site.url("slow", f"/c/{i % 10}")) for i in range(32))
        )
    assert all(r.ok for r in results)
    slow = crawl_site.requests("slow")
    assert len(slow) == 32
    # All 32 were in flight together: no pool held any of them back.
    assert max(r.in_flight for r in slow) == 32


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.5",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "fc00::1",
        "0.0.0.0",
        "::ffff:127.0.0.1",
        "100.64.0.1",
    ],
)
def test_non_public_addresses(address: str) -> None:
    assert not is_public_address(address)


def test_public_addresses() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:2800:220:1:248:1893:25c8:1946")


async def test_private_addresses_are_refused_by_default(crawl_site: CrawlSite) -> None:
    async with Fetcher(user_agent=UA) as guarded:
        for url in [
            crawl_site.url("shop", "/"),
            "http://localhost:9/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]:9/",
        ]:
            result = await guarded.fetch(url)
            assert result.error is FetchError.PRIVATE_ADDRESS, url
            assert result.status is None
    assert crawl_site.requests() == []


async def test_redirect_hops_are_checked_against_the_address_policy(
    crawl_site: CrawlSite,
) -> None:
    """Every hop connects through the guard: only the shop's address is let through here, as a
    public host would be, and its redirects to a private address or another host are refused."""
    shop_address = crawl_site.addresses["shop"]
    async with Fetcher(user_agent=UA, address_allowed=lambda a: a == shop_address) as fetcher:
        direct = await fetcher.fetch(crawl_site.url("shop", "/product/1"))
        to_private = await fetcher.fetch(crawl_site.url("shop", "/redirect-private"))
        to_other = await fetcher.fetch(crawl_site.url("shop", "/redirect-away"))
    assert direct.ok
    assert to_private.error is FetchError.PRIVATE_ADDRESS
    assert to_private.final_url == "http://10.255.255.1/"
    assert to_other.error is FetchError.PRIVATE_ADDRESS
    assert crawl_site.requests("bench") == []


async def test_setting_defaults_follow_the_environment() -> None:
    assert Settings(environment="embedded").crawl_allow_private is True
    assert Settings(environment="test").crawl_allow_private is True
    production = Settings(
        environment="production",
        secret_key="s" * 40,
        sandbox_enabled=False,
    )
    assert production.crawl_allow_private is False
    assert Fetcher.from_settings(production).allow_private is False


async def test_redirects_are_followed_and_recorded(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    result = await fetcher.fetch(crawl_site.url("shop", "/redirect-chain/3"))
    assert result.ok
    assert result.final_url == crawl_site.url("shop", "/product/1")
    assert [hop.rsplit("/", 2)[-2:] for hop in result.redirects] == [
        ["redirect-chain", "2"],
        ["redirect-chain", "1"],
        ["product", "1"],
    ]


async def test_redirect_limit(crawl_site: CrawlSite) -> None:
    async with Fetcher(user_agent=UA, allow_private=True, max_redirects=2) as fetcher:
        chain = await fetcher.fetch(crawl_site.url("shop", "/redirect-chain/5"))
        loop = await fetcher.fetch(crawl_site.url("shop", "/redirect-loop"))
    assert chain.error is FetchError.TOO_MANY_REDIRECTS
    assert chain.status == 302
    assert loop.error is FetchError.TOO_MANY_REDIRECTS
    assert len(crawl_site.requests("shop")) == 3 + 3


async def test_redirect_out_of_scope_is_not_followed(
    fetcher: Fetcher, crawl_site: CrawlSite
) -> None:
    scope = Scope.from_rules(allow=[crawl_site.authority("shop")])
    result = await fetcher.fetch(crawl_site.url("shop", "/redirect-away"), scope=scope)
    assert result.error is FetchError.REDIRECT_OUT_OF_SCOPE
    assert result.location == crawl_site.url("bench", "/b/1")
    assert crawl_site.requests("bench") == []


async def test_redirect_left_to_the_frontier(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    result = await fetcher.fetch(crawl_site.url("shop", "/old/product/2"), follow_redirects=False)
    assert result.status == 301 and result.error is None
    assert result.location == crawl_site.url("shop", "/product/2")
    assert [r.path for r in crawl_site.requests("shop")] == ["/old/product/2"]


async def test_body_size_limit(crawl_site: CrawlSite) -> None:
    async with Fetcher(user_agent=UA, allow_private=True, max_body_bytes=64 * 1024) as fetcher:
        small = await fetcher.fetch(crawl_site.url("shop", "/large?kib=16"))
        large = await fetcher.fetch(crawl_site.url("shop", "/large?kib=512"))
    assert small.ok
    assert large.error is FetchError.TOO_LARGE and large.body == b""


async def test_bodies_larger_than_the_read_buffer_arrive_whole(
    fetcher: Fetcher, crawl_site: CrawlSite
) -> None:
    """3 MiB crosses the backend's 256 KiB read buffer many times (reading pauses and resumes)."""
    result = await fetcher.fetch(crawl_site.url("shop", "/large?kib=3072"))
    assert result.ok
    assert result.body.count(b"x") == 3072 * 1024
    again = await fetcher.fetch(crawl_site.url("shop", "/product/1"))
    assert again.ok
    assert len({r.client for r in crawl_site.requests("shop")}) == 1


async def test_gzip_body_is_decoded(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    result = await fetcher.fetch(crawl_site.url("shop", "/gzip"))
    assert result.ok and result.body.startswith(b"<!doctype html>")


async def test_decompression_bomb_is_stopped() -> None:
    bomb = gzip.compress(b"<html>" + b"a" * (8 * 1024 * 1024))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-encoding: gzip\r\n"
            + f"content-length: {len(bomb)}\r\n\r\n".encode()
            + bomb
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Fetcher(user_agent=UA, allow_private=True, max_body_bytes=1 << 20) as f:
        result = await f.fetch(f"http://127.0.0.1:{port}/")
    assert len(bomb) < 1 << 20
    assert result.error is FetchError.TOO_LARGE


async def test_non_html_body_is_not_downloaded(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    result = await fetcher.fetch(crawl_site.url("shop", "/image.png"))
    assert result.ok and result.content_type == "image/png" and not result.is_html
    assert result.body == b""


async def test_timeout_is_a_result(crawl_site: CrawlSite) -> None:
    crawl_site.slow_delay_s = 1.0
    async with Fetcher(user_agent=UA, allow_private=True, timeout_s=0.2) as fetcher:
        result = await fetcher.fetch(crawl_site.url("slow", "/c/1"))
    assert result.error is FetchError.TIMEOUT and result.status is None


async def test_connection_refused_is_a_result(fetcher: Fetcher) -> None:
    result = await fetcher.fetch("http://127.0.0.1:9/")
    assert result.error is FetchError.CONNECTION


async def test_error_statuses_are_answers(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    missing = await fetcher.fetch(crawl_site.url("shop", "/missing"))
    throttled = await fetcher.fetch(crawl_site.url("throttle", "/c/1"))
    assert (missing.status, missing.error, missing.ok) == (404, None, False)
    assert throttled.status == 429 and throttled.headers["retry-after"] == "1"


async def test_robots_txt(fetcher: Fetcher, crawl_site: CrawlSite) -> None:
    result = await fetcher.fetch_robots(crawl_site.authority("shop"))
    assert result.ok and "Disallow: /private/" in result.text()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and localhost), signed by its own key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "crawl test")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def _answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = b"<title>tls</title>"
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    # Keep-alive announced, then the server closes the idle connection: the next fetch must
    # notice and open a new one instead of failing on the dead one.
    writer.close()


async def test_https_is_verified(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = await asyncio.start_server(_answer_once, "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context(cafile=str(cert))
    async with server:
        async with Fetcher(user_agent=UA, allow_private=True, ssl_context=trusting) as fetcher:
            first = await fetcher.fetch(f"https://127.0.0.1:{port}/")
            second = await fetcher.fetch(f"https://127.0.0.1:{port}/again")
        async with Fetcher(user_agent=UA, allow_private=True) as untrusting:
            refused = await untrusting.fetch(f"https://127.0.0.1:{port}/")
    assert first.ok and first.body == b"<title>tls</title>"
    assert second.ok
    assert refused.error is FetchError.CONNECTION
    assert "certificate" in (refused.detail or "").lower()


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    server = await asyncio.start_server(_answer_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Fetcher(user_agent=UA, allow_private=True) as fetcher:
        results = [await fetcher.fetch(f"http://127.0.0.1:{port}/{i}") for i in range(3)]
    assert all(r.ok for r in results)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
async def test_compressed_bodies(encoding: str) -> None:
    page = b"<html><title>packed</title>" + b"<p>lorem ipsum</p>" * 200 + b"</html>"
    packed = {
        "gzip": gzip.compress,
        "deflate": zlib.compress,
        "br": brotli.compress,
    }[encoding](page)
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n"
            + f"content-encoding: {encoding}\r\ncontent-length: {len(packed)}\r\n\r\n".encode()
            + packed
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Fetcher(user_agent=UA, allow_private=True) as fetcher:
        result = await fetcher.fetch(f"http://127.0.0.1:{port}/")
    assert result.ok and result.body == page
    assert encoding.encode() in seen[0].lower()  # offered in Accept-Encoding


@pytest.mark.parametrize("url", ["http://[::1/x", "ftp://h/", "http:///x", "http://h:99999/"])
async def test_invalid_urls_are_results(fetcher: Fetcher, url: str) -> None:
    result = await fetcher.fetch(url)
    assert result.error is FetchError.INVALID_URL and result.status is None


def test_fetching_works_on_uvloop_as_in_serve(crawl_site: CrawlSite) -> None:
    """`serve` runs its in-process worker on uvicorn's loop, uvloop, whose transports do not
    subclass asyncio.Transport (a fetch once failed there on an isinstance check)."""
    import uvloop

    async def fetch_once() -> tuple[bool, int | None]:
        async with Fetcher(user_agent=UA, allow_private=True, timeout_s=2.0) as client:
            result = await client.fetch(crawl_site.url("shop", "/product/1"))
            robots = await client.fetch_robots(crawl_site.authority("shop"))
        return result.ok, robots.status

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        ok, robots_status = runner.run(fetch_once())
    assert ok and robots_status is not None


@pytest.mark.parametrize("framing", ["chunked", "until-close"])
async def test_bodies_without_a_length_arrive_whole(framing: str) -> None:
    """A chunked body, and an HTTP/1.0-style body that ends where the connection does."""
    parts = [b"<html><title>framed</title>", b"<p>" + b"x" * 5000 + b"</p>", b"</html>"]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        if framing == "chunked":
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            for part in parts:
                writer.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/html\r\n\r\n")
            for part in parts:
                writer.write(part)
                await writer.drain()
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Fetcher(user_agent=UA, allow_private=True) as fetcher:
        first = await fetcher.fetch(f"http://127.0.0.1:{port}/")
        second = await fetcher.fetch(f"http://127.0.0.1:{port}/again")
    assert first.ok and first.body == b"".join(parts)
    assert second.ok and second.body == b"".join(parts)
