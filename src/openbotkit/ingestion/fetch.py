"""Fetching a URL on a user's behalf without becoming a proxy into private networks (SSRF):
the one way out for every outbound request a user's input causes (`Fetcher`).

Every hop's host is resolved once, every address it resolves to is checked, and the connection
goes to a checked address (pinned): a DNS answer that changes between the check and the connect
(rebinding) cannot reach 127.0.0.1 or 169.254.169.254. TLS still verifies the certificate for
the host name (SNI and Host name the host, the socket goes to the address). IPv6 forms that carry
an IPv4 address (mapped, IPv4-compatible, NAT64, 6to4, Teredo) are judged by the IPv4 inside.
Loopback, private, link-local (cloud metadata lives there), multicast, reserved and unspecified
addresses are refused unless the operator lets them through: OBK_FETCH_ALLOW_HOSTS names hosts
(`host[:port]`, as written in the URL) that may resolve anywhere, OBK_ALLOW_PRIVATE_URLS lets
every host do so. Proxies and credentials from the environment are never used. Redirects are
followed by hand (at most 5) so each target is checked too. Bodies are streamed with a size
cap; every read waits at most 30 s, and the whole fetch (connects, redirects, TLS, headers,
body) ends at one deadline (OBK_FETCH_TIMEOUT_S): no read waits past it, so a server that drips
a byte at a time holds nothing for longer.

A re-fetch is conditional: the validators of the last fetch (`ETag`, `Last-Modified`) go out as
If-None-Match / If-Modified-Since, and a 304 answer is handed back unread.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from openbotkit.errors import InvalidInput, LimitsReached, Problem

if TYPE_CHECKING:
    from openbotkit.settings import Settings

MAX_REDIRECTS = 5
READ_TIMEOUT_S = 30.0
AllowHosts = frozenset[tuple[str, int | None]]

# host, port -> the addresses to connect to (the seam tests and `Settings.resolve_hosts` use).
Resolver = Callable[[str, int], Sequence[str]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class Fetched:
    url: str
    content_type: str
    name: str | None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False  # a 304: what was fetched last time is still current
    status: int = 200


def conditional_headers(etag: str | None, last_modified: str | None) -> dict[str, str]:
    """The request headers that let a server answer 304 when nothing changed since a fetch."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's answer (getaddrinfo), in its order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def hosts_resolver(
    hosts: Mapping[str, Sequence[str]], fallback: Resolver | None = None
) -> Resolver:
    """A resolver answering from `hosts` (like /etc/hosts or curl --resolve), else `fallback`."""

    def resolve(host: str, port: int) -> Sequence[str]:
        found = hosts.get(host.lower())
        if found is not None:
            return list(found)
        if fallback is None:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host")
        return fallback(host, port)

    return resolve


def embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and so reaches), if it is such a form."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if any(address in net for net in _NAT64):
        return [low32]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # (server, client): both are reached on the way
    if address in _IPV4_COMPATIBLE:
        return [low32]
    return []


def is_public(address: IPAddress) -> bool:
    """True for a globally routable unicast address (and every IPv4 address it embeds)."""
    inner = embedded_ipv4(address)
    if inner:
        return all(v4.is_global and not v4.is_multicast for v4 in inner)
    return address.is_global and not address.is_multicast


def _refuse(url: str, host: str, field: str) -> InvalidInput:
    # Never say what the host resolved to: that would make this a DNS oracle for private names.
    return InvalidInput(
        f"refusing to fetch {url}: {host} is not a public address (an operator can let named"
        " hosts through with OBK_FETCH_ALLOW_HOSTS=host[:port], or every private target with"
        " OBK_ALLOW_PRIVATE_URLS=1)",
        details=[Problem(field, "public_url", "not a public address")],
    )


def is_allowed_host(allow_hosts: AllowHosts, host: str, port: int) -> bool:
    """Whether OBK_FETCH_ALLOW_HOSTS names this host (as written in the URL) and port."""
    host = host.lower()
    return (host, port) in allow_hosts or (host, None) in allow_hosts


@dataclass(frozen=True)
class Target:
    """A URL whose host has been resolved and checked: connect to `addresses`, in order."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    allow_hosts: AllowHosts = frozenset(),
    field: str = "/file",
) -> Target:
    """Resolve `url`'s host once; raise unless it is http(s) and every address is public (or
    the host is let through: `allow_private`, or named in `allow_hosts`)."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            f"not an http(s) URL: {url!r}", details=[Problem(field, "url", "http or https only")]
        )
    port = port or (443 if parts.scheme == "https" else 80)
    allow_private = allow_private or is_allowed_host(allow_hosts, host, port)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        answers: Sequence[str] = [str(literal)]
    else:
        try:
            answers = (resolver or system_resolver)(host, port)
        except (OSError, UnicodeError):
            answers = []
        if not answers:
            raise InvalidInput(
                f"cannot resolve {host}", details=[Problem(field, "url", "dns")]
            ) from None
    addresses: list[str] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError:
            raise _refuse(url, host, field) from None
        if not allow_private and not is_public(address):
            raise _refuse(url, host, field)
        addresses.append(str(address))
    return Target(url, host, port, tuple(addresses))


@dataclass(frozen=True)
class Send:
    """What a request sends besides its URL: GET with no body unless an ability says more."""

    method: str = "GET"
    content: bytes | None = None
    headers: Mapping[str, str] | None = None


def _pinned_request(
    client: httpx.Client, target: Target, address: str, send: Send
) -> httpx.Request:
    """`target.url` over a socket to `address`, the Host header and TLS name unchanged."""
    original = httpx.URL(target.url)
    request = client.build_request(
        send.method,
        original.copy_with(host=address),
        headers={**(send.headers or {}), "Host": original.netloc.decode("ascii")},
        content=send.content,
    )
    if original.scheme == "https":
        request.extensions["sni_hostname"] = target.host
    return request


class _DeadlineStream(httpcore.NetworkStream):
    """A connection none of whose reads, writes or TLS handshakes waits past `deadline`."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self.inner, self.deadline = inner, deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _within(timeout, self.deadline, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _within(timeout, self.deadline, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _within(timeout, self.deadline, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self.inner.start_tls(ssl_context, server_hostname, left), self.deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self.inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Plain sockets (httpcore's own), connected and used within one deadline."""

    def __init__(self, deadline: float) -> None:
        self.inner, self.deadline = httpcore.SyncBackend(), deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _within(timeout, self.deadline, httpcore.ConnectTimeout)
        stream = self.inner.connect_tcp(host, port, left, local_address, socket_options)
        return _DeadlineStream(stream, self.deadline)


def _within(timeout: float | None, deadline: float, late: type[Exception]) -> float:
    """The time one I/O step may wait: its own timeout, cut to what is left of the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise late("the fetch's deadline has passed")
    return left if timeout is None else min(timeout, left)


def _client(timeout: float, deadline: float | None) -> httpx.Client:
    # trust_env=False: no HTTP(S)_PROXY, ALL_PROXY, NO_PROXY, .netrc or SSL_CERT_* from here.
    transport = httpx.HTTPTransport(trust_env=False)
    if deadline is not None:
        # httpx has no setting for a backend: its pool is made again with ours (and the TLS
        # context httpx made), which tests/ingestion/test_fetch.py holds to the deadline.
        transport._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_DeadlineBackend(deadline),
        )
    return httpx.Client(
        timeout=timeout, follow_redirects=False, trust_env=False, transport=transport
    )


@contextmanager
def open_url(
    url: str,
    *,
    allow_private: bool,
    timeout: float = READ_TIMEOUT_S,
    resolver: Resolver | None = None,
    check: Callable[[str], None] | None = None,
    headers: Mapping[str, str] | None = None,
    allow_hosts: AllowHosts = frozenset(),
    deadline: float | None = None,
    field: str = "/file",
    send: Send | None = None,
    error_statuses: bool = False,
) -> Iterator[tuple[httpx.Response, Fetched]]:
    """A checked, pinned, streaming GET; redirects are checked hop by hop. `headers` go with
    every hop (conditional ones included: a 304 yields `Fetched.not_modified` and an unread
    response). `timeout` bounds each step; `deadline` (a `time.monotonic()` instant), if given,
    the whole fetch. Errors name `field`, the input that gave the URL.

    `send` makes it another method with a body and headers (an ability's request): its headers
    go to the first origin only (they may carry a credential; a redirect elsewhere gets none),
    and a 303 (or a 301/302 of anything but GET/HEAD) continues as a GET without the body, as
    browsers do. `error_statuses` hands back a 4xx/5xx answer instead of raising.

    `check`, if given, is called with each hop's URL before it is resolved (a test's probe).
    """
    first_origin_only = send is not None
    send = send or Send(headers=headers)
    with _client(timeout, deadline) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if check is not None:
                check(current)
            target = check_url(
                current,
                allow_private=allow_private,
                resolver=resolver,
                allow_hosts=allow_hosts,
                field=field,
            )
            response = _connect(client, target, send, field)
            if response.has_redirect_location:  # not 304, nor a 3xx without Location
                location = response.headers.get("location", "")
                response.close()
                status, previous, current = (
                    response.status_code,
                    current,
                    urljoin(current, location),
                )
                if status == 303 or (status in (301, 302) and send.method not in ("GET", "HEAD")):
                    send = Send("GET", None, send.headers)
                if first_origin_only and _origin(current) != _origin(previous):
                    send = Send(send.method, send.content, None)
                continue
            try:
                if response.status_code >= 400 and not error_statuses:
                    raise InvalidInput(
                        f"fetching {current} failed with HTTP {response.status_code}",
                        details=[Problem(field, "fetch", f"HTTP {response.status_code}")],
                    )
                content_type = response.headers.get("content-type", "application/octet-stream")
                name = urlsplit(current).path.rsplit("/", 1)[-1] or None
                yield (
                    response,
                    Fetched(
                        current,
                        content_type.split(";")[0].strip(),
                        name,
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                        not_modified=response.status_code == 304,
                        status=response.status_code,
                    ),
                )
            finally:
                response.close()
            return
        raise InvalidInput(
            f"too many redirects fetching {url}", details=[Problem(field, "fetch", "redirects")]
        )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, (parts.hostname or "").lower(), port


def _connect(client: httpx.Client, target: Target, send: Send, field: str) -> httpx.Response:
    """The response from the first checked address that accepts a connection."""
    failure: httpx.HTTPError | None = None
    for address in target.addresses:
        try:
            return client.send(_pinned_request(client, target, address, send), stream=True)
        except httpx.ConnectError as exc:
            failure = exc
        except httpx.HTTPError as exc:
            failure = exc
            break
    # The exception text may name the address connected to; keep it out of the answer.
    kind = type(failure).__name__ if failure is not None else "no address"
    raise InvalidInput(
        f"could not fetch {target.url}: {kind}",
        details=[Problem(field, "fetch", kind)],
    ) from None


def capped_chunks(response: httpx.Response, max_bytes: int) -> Iterator[bytes]:
    """The body in chunks, refused as soon as it passes `max_bytes`."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise LimitsReached(f"remote file is {declared} bytes, over the {max_bytes}-byte limit")
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise LimitsReached(f"remote file is over the {max_bytes}-byte limit")
        yield chunk


def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The whole body in memory, refused as soon as it passes `max_bytes`."""
    return b"".join(capped_chunks(response, max_bytes))


@dataclass(frozen=True)
class Body:
    """A fetched body: `chunks` streams it (size capped, within the deadline); `fetched` says
    what it is. A 304 (`fetched.not_modified`) has no chunks."""

    chunks: Iterator[bytes]
    fetched: Fetched


@dataclass(frozen=True)
class Fetcher:
    """The one way out: every outbound request a user's input causes (URL uploads, re-fetches,
    attachments, and later abilities) goes through here, so each gets the same rule (public
    addresses, unless the operator allows a host), the same deadline and the same size cap."""

    allow_private: bool = False
    allow_hosts: AllowHosts = frozenset()
    timeout_s: float = 60.0
    max_bytes: int = 25 * 1024 * 1024
    resolver: Resolver | None = None

    @classmethod
    def from_settings(cls, settings: Settings, resolver: Resolver | None = None) -> Fetcher:
        """OBK_ALLOW_PRIVATE_URLS, OBK_FETCH_ALLOW_HOSTS, OBK_FETCH_TIMEOUT_S and
        OBK_MAX_FILE_BYTES; host names answer from `resolver` (else the system's)."""
        return cls(
            settings.allow_private_urls,
            settings.fetch_allow_list,
            settings.fetch_timeout_s,
            settings.max_file_bytes,
            resolver,
        )

    @contextmanager
    def open(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        field: str = "/file",
        send: Send | None = None,
        error_statuses: bool = False,
    ) -> Iterator[Body]:
        """A checked GET of `url` (see `open_url`; `send` and `error_statuses` as there), its
        body read within the deadline. Errors are InvalidInput naming `field` (LimitsReached
        past the size cap)."""
        deadline = time.monotonic() + self.timeout_s
        try:
            with open_url(
                url,
                allow_private=self.allow_private,
                allow_hosts=self.allow_hosts,
                resolver=self.resolver,
                headers=headers,
                timeout=min(READ_TIMEOUT_S, self.timeout_s),
                deadline=deadline,
                field=field,
                send=send,
                error_statuses=error_statuses,
            ) as (response, fetched):
                yield Body(self._chunks(response, url, field), fetched)
        except InvalidInput as exc:
            if time.monotonic() >= deadline and any(p.rule == "fetch" for p in exc.details):
                raise self._late(url, field) from None
            raise

    def read(
        self, url: str, *, headers: Mapping[str, str] | None = None, field: str = "/file"
    ) -> tuple[bytes | None, Fetched]:
        """The whole body in memory (None for a 304), and what it is."""
        with self.open(url, headers=headers, field=field) as body:
            if body.fetched.not_modified:
                return None, body.fetched
            return b"".join(body.chunks), body.fetched

    def _chunks(self, response: httpx.Response, url: str, field: str) -> Iterator[bytes]:
        try:
            yield from capped_chunks(response, self.max_bytes)
        except httpx.HTTPError as exc:
            # The text may name the address connected to; the kind of failure is enough.
            raise InvalidInput(
                f"could not fetch {url}: {type(exc).__name__} while reading the body",
                details=[Problem(field, "fetch", type(exc).__name__)],
            ) from None

    def _late(self, url: str, field: str) -> InvalidInput:
        return InvalidInput(
            f"fetching {url} took longer than the {self.timeout_s:g} s allowed"
            " (OBK_FETCH_TIMEOUT_S)",
            details=[Problem(field, "fetch_timeout", f"at most {self.timeout_s:g} s")],
        )
