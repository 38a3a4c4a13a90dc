"""The SSRF guard, against real sockets on loopback."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest

from openbotkit.errors import InvalidInput
from openbotkit.ingestion.fetch import check_url, open_url


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
    ],
)
def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput, match="non-public address"):
        check_url(url, allow_private=False)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "not a url"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(InvalidInput, match="not an http"):
        check_url(url, allow_private=True)


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/doc.txt")
            self.end_headers()
            return
        body = b"hello from loopback"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def local_http() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_loopback_needs_the_explicit_setting(local_http: str) -> None:
    with (
        pytest.raises(InvalidInput, match="OBK_ALLOW_PRIVATE_URLS"),
        open_url(local_http + "/doc.txt", allow_private=False),
    ):
        pass
    with open_url(local_http + "/doc.txt", allow_private=True) as (response, fetched):
        assert response.read() == b"hello from loopback"
        assert fetched.content_type == "text/plain" and fetched.name == "doc.txt"


def test_every_redirect_hop_is_checked(local_http: str) -> None:
    seen: list[str] = []

    def check(url: str) -> None:
        seen.append(url)
        if url.endswith("/doc.txt"):
            raise InvalidInput("refused second hop")

    with (
        pytest.raises(InvalidInput, match="refused second hop"),
        open_url(local_http + "/redirect", allow_private=True, resolve=check),
    ):
        pass
    assert seen == [local_http + "/redirect", local_http + "/doc.txt"]
