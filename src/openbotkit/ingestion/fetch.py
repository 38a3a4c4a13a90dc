"""Fetching a URL on a user's behalf without becoming a proxy into private networks (SSRF).

Every hop's host is resolved once, every address it resolves to is checked, and the connection
goes to a checked address (pinned): a DNS answer that changes between the check and the connect
(rebinding) cannot reach 127.0.0.1 or 169.254.169.254. TLS still verifies the certificate for
the host name (SNI and Host name the host, the socket goes to the address). IPv6 forms that carry
an IPv4 address (mapped, IPv4-compatible, NAT64, 6to4, Teredo) are judged by the IPv4 inside.
Loopback, private, link-local (cloud metadata lives there), multicast, reserved and unspecified
addresses are refused unless OBK_ALLOW_PRIVATE_URLS is set. Proxies and credentials from the
environment are never used. Redirects are followed by hand (at most 5) so each target is checked
too. Bodies are streamed with a size cap and a timeout.

A re-fetch is conditional: the validators of the last fetch (`ETag`, `Last-Modified`) go out as
If-None-Match / If-Modified-Since, and a 304 answer is handed back unread.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from openbotkit.errors import InvalidInput, LimitsReached, Problem

MAX_REDIRECTS = 5

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


def _refuse(url: str, host: str) -> InvalidInput:
    # Never say what the host resolved to: that would make this a DNS oracle for private names.
    return InvalidInput(
        f"refusing to fetch {url}: {host} is not a public address"
        " (set OBK_ALLOW_PRIVATE_URLS=1 to allow private targets)",
        details=[Problem("/file", "public_url", "not a public address")],
    )


@dataclass(frozen=True)
class Target:
    """A URL whose host has been resolved and checked: connect to `addresses`, in order."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def check_url(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> Target:
    """Resolve `url`'s host once; raise unless it is http(s) and every address is public."""
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidInput(
            f"not an http(s) URL: {url!r}", details=[Problem("/file", "url", "http or https only")]
        )
    port = port or (443 if parts.scheme == "https" else 80)
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
                f"cannot resolve {host}", details=[Problem("/file", "url", "dns")]
            ) from None
    addresses: list[str] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer.split("%", 1)[0])
        except ValueError:
            raise _refuse(url, host) from None
        if not allow_private and not is_public(address):
            raise _refuse(url, host)
        addresses.append(str(address))
    return Target(url, host, port, tuple(addresses))


def _pinned_request(
    client: httpx.Client, target: Target, address: str, headers: Mapping[str, str] | None
) -> httpx.Request:
    """GET `target.url` over a socket to `address`, the Host header and TLS name unchanged."""
    original = httpx.URL(target.url)
    request = client.build_request(
        "GET",
        original.copy_with(host=address),
        headers={**(headers or {}), "Host": original.netloc.decode("ascii")},
    )
    if original.scheme == "https":
        request.extensions["sni_hostname"] = target.host
    return request


@contextmanager
def open_url(
    url: str,
    *,
    allow_private: bool,
    timeout: float = 30.0,
    resolver: Resolver | None = None,
    check: Callable[[str], None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[tuple[httpx.Response, Fetched]]:
    """A checked, pinned, streaming GET; redirects are checked hop by hop. `headers` go with
    every hop (conditional ones included: a 304 yields `Fetched.not_modified` and an unread
    response).

    `check`, if given, is called with each hop's URL before it is resolved (a test's probe).
    """
    # trust_env=False: no HTTP(S)_PROXY, ALL_PROXY, NO_PROXY, .netrc or SSL_CERT_* from here.
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if check is not None:
                check(current)
            target = check_url(current, allow_private=allow_private, resolver=resolver)
            response = _connect(client, target, headers)
            if response.has_redirect_location:  # not 304, nor a 3xx without Location
                location = response.headers.get("location", "")
                response.close()
                current = urljoin(current, location)
                continue
            try:
                if response.status_code >= 400:
                    raise InvalidInput(
                        f"fetching {current} failed with HTTP {response.status_code}",
                        details=[Problem("/file", "fetch", f"HTTP {response.status_code}")],
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
                    ),
                )
            finally:
                response.close()
            return
        raise InvalidInput(
            f"too many redirects fetching {url}", details=[Problem("/file", "fetch", "redirects")]
        )


def _connect(
    client: httpx.Client, target: Target, headers: Mapping[str, str] | None
) -> httpx.Response:
    """The response from the first checked address that accepts a connection."""
    failure: httpx.HTTPError | None = None
    for address in target.addresses:
        try:
            return client.send(_pinned_request(client, target, address, headers), stream=True)
        except httpx.ConnectError as exc:
            failure = exc
        except httpx.HTTPError as exc:
            failure = exc
            break
    # The exception text may name the address connected to; keep it out of the answer.
    kind = type(failure).__name__ if failure is not None else "no address"
    raise InvalidInput(
        f"could not fetch {target.url}: {kind}",
        details=[Problem("/file", "fetch", kind)],
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
