"""The SSRF guard, attacked for real: sockets on loopback, a resolver the test controls (the
fetcher's own seam, a hosts mapping), proxies set in the environment."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator, Sequence

import pytest

from openbotkit.errors import InvalidInput, LimitsReached
from openbotkit.ingestion.fetch import (
    Fetcher,
    capped_chunks,
    check_url,
    hosts_resolver,
    is_public,
    open_url,
)
from openbotkit.settings import Settings, allow_hosts
from tests.ingestion.remote import dripping_server


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/admin",
        "http://localhost:8080/",
        "http://10.0.0.5/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="not a public address"):
        check_url(url, allow_private=False)


# IPv6 forms that carry an IPv4 address are judged by the IPv4 inside.
EMBEDDED_PRIVATE = [
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::a00:5",  # local-use NAT64 of 10.0.0.5
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",  # Teredo, client 127.0.0.1
]


@pytest.mark.parametrize("address", EMBEDDED_PRIVATE)
def test_ipv6_forms_embedding_private_ipv4_are_refused(address: str) -> None:
    with pytest.raises(InvalidInput, match="not a public address"):
        check_url(f"http://[{address}]/", allow_private=False)
    resolver = hosts_resolver({"sneaky.test": [address]})
    with pytest.raises(InvalidInput, match="not a public address") as caught:
        check_url("http://sneaky.test/", allow_private=False, resolver=resolver)
    # The answer never says what the name resolved to.
    assert address not in str(caught.value) and address not in repr(caught.value.details)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::808:808"])
def test_ipv6_forms_embedding_public_ipv4_are_public(address: str) -> None:
    import ipaddress

    assert is_public(ipaddress.ip_address(address))


def test_one_private_answer_among_public_ones_is_refused() -> None:
    resolver = hosts_resolver({"mixed.test": ["93.184.216.34", "127.0.0.1"]})
    with pytest.raises(InvalidInput, match=r"mixed\.test is not a public address") as caught:
        check_url("http://mixed.test/", allow_private=False, resolver=resolver)
    assert "127.0.0.1" not in str(caught.value)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "not a url"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(InvalidInput, match="not an http"):
        check_url(url, allow_private=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:
        type(self).seen.append((self.path, self.headers.get("Host", "")))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/doc.txt")
            self.end_headers()
            return
        body = b"hello from loopback" * (1000 if self.path == "/big" else 1)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        if self.path != "/big":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_http() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_loopback_needs_the_explicit_setting(local_http: tuple[str, list[object]]) -> None:
    origin, seen = local_http
    with (
        pytest.raises(InvalidInput, match="OBK_ALLOW_PRIVATE_URLS"),
        open_url(f"http://{origin}/doc.txt", allow_private=False),
    ):
        pass
    assert seen == []
    with open_url(f"http://{origin}/doc.txt", allow_private=True) as (response, fetched):
        assert response.read() == b"hello from loopback"
        assert fetched.content_type == "text/plain" and fetched.name == "doc.txt"


def test_a_name_resolving_to_loopback_is_refused_without_connecting(
    local_http: tuple[str, list[object]],
) -> None:
    origin, seen = local_http
    port = origin.rsplit(":", 1)[1]
    resolver = hosts_resolver({"internal.test": ["127.0.0.1"]})
    with (
        pytest.raises(InvalidInput, match=r"internal\.test is not a public address"),
        open_url(f"http://internal.test:{port}/doc.txt", allow_private=False, resolver=resolver),
    ):
        pass
    assert seen == []


class _Rebinding:
    """A DNS server's behaviour in a rebinding attack: the first answer is the one checked,
    every later answer points somewhere else."""

    def __init__(self, first: str, later: str) -> None:
        self.first, self.later, self.calls = first, later, 0

    def __call__(self, host: str, port: int) -> Sequence[str]:
        self.calls += 1
        return [self.first if self.calls == 1 else self.later]


def test_rebinding_cannot_reach_loopback(local_http: tuple[str, list[object]]) -> None:
    """The checked public answer is the one connected to: the loopback server, which every
    later answer names, is never reached."""
    origin, seen = local_http
    port = origin.rsplit(":", 1)[1]
    resolver = _Rebinding("192.88.99.1", "127.0.0.1")  # 192.88.99.1: public, nothing listens
    assert is_public(__import__("ipaddress").ip_address("192.88.99.1"))
    with (
        pytest.raises(InvalidInput, match="could not fetch"),
        open_url(
            f"http://rebind.test:{port}/doc.txt",
            allow_private=False,
            resolver=resolver,
            timeout=2,
        ),
    ):
        pass
    assert seen == [] and resolver.calls == 1


def test_the_connection_goes_to_the_checked_address_with_the_host_name_kept(
    local_http: tuple[str, list[tuple[str, str]]],
) -> None:
    """Resolved once per hop; Host names the host while the socket goes to the pinned address
    (a second resolution would answer 127.0.0.2, where nothing listens)."""
    origin, seen = local_http
    port = origin.rsplit(":", 1)[1]
    resolver = _Rebinding("127.0.0.1", "127.0.0.2")
    with open_url(f"http://pinned.test:{port}/doc.txt", allow_private=True, resolver=resolver) as (
        response,
        _,
    ):
        assert response.read() == b"hello from loopback"
    assert resolver.calls == 1
    assert seen == [("/doc.txt", f"pinned.test:{port}")]


def test_proxies_from_the_environment_are_not_used(
    local_http: tuple[str, list[tuple[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy would receive the request for any host (and could resolve it itself): the
    environment names the loopback server as proxy, and it must see the plain path only."""
    origin, seen = local_http
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(var, f"http://{origin}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with open_url(f"http://{origin}/doc.txt", allow_private=True) as (response, _):
        response.read()
    assert [path for path, _ in seen] == ["/doc.txt"]  # a proxied request names the full URL


def test_every_redirect_hop_is_checked(local_http: tuple[str, list[object]]) -> None:
    origin, _ = local_http
    hops: list[str] = []

    def probe(url: str) -> None:
        hops.append(url)
        if url.endswith("/doc.txt"):
            raise InvalidInput("refused second hop")

    with (
        pytest.raises(InvalidInput, match="refused second hop"),
        open_url(f"http://{origin}/redirect", allow_private=True, check=probe),
    ):
        pass
    assert hops == [f"http://{origin}/redirect", f"http://{origin}/doc.txt"]


def test_undeclared_length_is_cut_off_at_the_cap(local_http: tuple[str, list[object]]) -> None:
    origin, _ = local_http
    with (
        open_url(f"http://{origin}/big", allow_private=True) as (response, _),
        pytest.raises(LimitsReached),
    ):
        for _chunk in capped_chunks(response, 1000):
            pass


def test_an_allowed_host_passes_the_public_address_rule_and_nothing_else_does(
    local_http: tuple[str, list[tuple[str, str]]],
) -> None:
    """OBK_FETCH_ALLOW_HOSTS names hosts as written in the URL, with or without a port."""
    origin, seen = local_http
    port = int(origin.rsplit(":", 1)[1])
    allowed = allow_hosts(f"127.0.0.1:{port}, docs.internal")
    with open_url(f"http://{origin}/doc.txt", allow_private=False, allow_hosts=allowed) as (
        response,
        _,
    ):
        assert response.read() == b"hello from loopback"
    names = ("docs.internal", "other.internal", "localhost")
    resolver = hosts_resolver({name: ["127.0.0.1"] for name in names})
    check_url(
        f"http://docs.internal:{port}/", allow_private=False, resolver=resolver, allow_hosts=allowed
    )
    for url in (
        f"http://127.0.0.1:{port + 1}/",  # another port of an allowed address
        f"http://localhost:{port}/",  # another name for it
        f"http://other.internal:{port}/",
    ):
        with pytest.raises(InvalidInput, match="OBK_FETCH_ALLOW_HOSTS"):
            check_url(url, allow_private=False, resolver=resolver, allow_hosts=allowed)
    assert [path for path, _ in seen] == ["/doc.txt"]


def test_a_redirect_from_an_allowed_host_to_another_private_one_is_refused(
    local_http: tuple[str, list[tuple[str, str]]],
) -> None:
    origin, seen = local_http
    port = origin.rsplit(":", 1)[1]
    resolver = hosts_resolver({"docs.internal": ["127.0.0.1"]})
    allowed = allow_hosts("docs.internal")
    # /redirect answers Location: /doc.txt on the same host: allowed; to the address itself
    # (not named in the list) it would not be.
    with open_url(
        f"http://docs.internal:{port}/redirect",
        allow_private=False,
        allow_hosts=allowed,
        resolver=resolver,
    ) as (response, fetched):
        assert response.read() == b"hello from loopback" and fetched.name == "doc.txt"
    with (
        pytest.raises(InvalidInput, match="not a public address"),
        open_url(f"http://{origin}/doc.txt", allow_private=False, allow_hosts=allowed),
    ):
        pass
    assert [path for path, _ in seen] == ["/redirect", "/doc.txt"]


@pytest.mark.parametrize("value", ["http://x.test/", "x.test:port", "user@x.test", "x.test/path"])
def test_a_malformed_allow_list_is_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(InvalidInput, match="OBK_FETCH_ALLOW_HOSTS") as caught:
        Settings.from_env({"OBK_HOME": "/tmp/x", "OBK_FETCH_ALLOW_HOSTS": value})
    assert caught.value.details[0].pointer == "/OBK_FETCH_ALLOW_HOSTS"


@pytest.mark.parametrize("path", ["/body", "/slow-headers"])
def test_the_deadline_ends_a_dripping_fetch(path: str) -> None:
    """A server that sends a byte now and then passes every per-read timeout; the fetch's one
    deadline ends it all the same, headers or body, with an error saying so."""
    with dripping_server() as drip:
        fetcher = Fetcher(allow_hosts=allow_hosts(drip.host), timeout_s=0.5)
        with pytest.raises(InvalidInput, match=r"took longer than the 0\.5 s") as caught:
            fetcher.read(drip.url(path), field="/attachments/0")
        assert caught.value.details[0].pointer == "/attachments/0"
        assert caught.value.details[0].rule == "fetch_timeout"
        with drip.arrived:  # the connection was given up, not left dripping
            assert drip.arrived.wait_for(lambda: drip.finished == 1, 30)
        assert drip.begun == [path]


def test_a_released_drip_is_read_whole() -> None:
    with dripping_server() as drip:
        drip.release.set()
        data, fetched = Fetcher(allow_hosts=allow_hosts(drip.host)).read(drip.url("/a.txt"))
        assert data is not None and data.endswith(b"the end\n")
        assert fetched.content_type == "text/plain" and fetched.name == "a.txt"
