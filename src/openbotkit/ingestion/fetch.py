"""Fetching a URL on a user's behalf without becoming a proxy into private networks (SSRF).

Every hop is resolved and each address checked before connecting: loopback, private,
link-local (cloud metadata lives there), multicast, reserved and unspecified addresses are
refused unless OBK_ALLOW_PRIVATE_URLS is set. Redirects are followed by hand (at most 5) so each
target is checked too. Bodies are streamed with a size cap and a timeout.

A re-fetch is conditional: the validators of the last fetch (`ETag`, `Last-Modified`) go out as
If-None-Match / If-Modified-Since, and a 304 answer is handed back unread.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from openbotkit.errors import InvalidInput, LimitsReached, Problem

MAX_REDIRECTS = 5


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


def _refuse(url: str, why: str) -> InvalidInput:
    return InvalidInput(
        f"refusing to fetch {url}: {why} (set OBK_ALLOW_PRIVATE_URLS=1 to allow private targets)",
        details=[Problem("/file", "public_url", why)],
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Raise unless `url` is http(s) and every address its host resolves to is public."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"not an http(s) URL: {url!r}", details=[Problem("/file", "url", "http or https only")]
        )
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidInput(
            f"cannot resolve {parts.hostname}: {exc}", details=[Problem("/file", "url", "dns")]
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise _refuse(url, f"{parts.hostname} resolves to non-public address {address}")


@contextmanager
def open_url(
    url: str,
    *,
    allow_private: bool,
    timeout: float = 30.0,
    resolve: Callable[[str], None] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Iterator[tuple[httpx.Response, Fetched]]:
    """A checked, streaming GET; redirects are checked hop by hop. `headers` go with every hop
    (conditional ones included: a 304 yields `Fetched.not_modified` and an unread response)."""
    check = resolve or (lambda u: check_url(u, allow_private=allow_private))
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            check(current)
            request = client.build_request("GET", current, headers=headers)
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise InvalidInput(
                    f"could not fetch {current}: {exc}",
                    details=[Problem("/file", "fetch", str(exc))],
                ) from None
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


def capped_chunks(response: httpx.Response, max_bytes: int) -> Iterator[bytes]:
    """The body in chunks, refused as soon as it passes `max_bytes`."""
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise LimitsReached(f"remote file is {declared} bytes, over the {max_bytes}-byte limit")
    yield from response.iter_bytes()


def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The whole body in memory, refused as soon as it passes `max_bytes`."""
    body = bytearray()
    for chunk in capped_chunks(response, max_bytes):
        body += chunk
        if len(body) > max_bytes:
            raise LimitsReached(f"remote file is over the {max_bytes}-byte limit")
    return bytes(body)
