"""Fetching a URL on a user's behalf without becoming a proxy into private networks (SSRF).

Every hop is resolved and each address checked before connecting: loopback, private,
link-local (cloud metadata lives there), multicast, reserved and unspecified addresses are
refused unless OBK_ALLOW_PRIVATE_URLS is set. Redirects are followed by hand (at most 5) so each
target is checked too. Bodies are streamed with a size cap and a timeout.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
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
) -> Iterator[tuple[httpx.Response, Fetched]]:
    """A checked, streaming GET; redirects are checked hop by hop."""
    check = resolve or (lambda u: check_url(u, allow_private=allow_private))
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            check(current)
            request = client.build_request("GET", current)
            try:
                response = client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise InvalidInput(
                    f"could not fetch {current}: {exc}",
                    details=[Problem("/file", "fetch", str(exc))],
                ) from None
            if response.is_redirect:
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
                yield response, Fetched(current, content_type.split(";")[0].strip(), name)
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
