"""Keep-alive: the server keeps an idle connection open longer than clients keep theirs, so a
client reusing its pooled connection never meets one the server is closing at that instant
(httpx's pool, for one, expires idle connections after 5 s: uvicorn's own default)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from tests.reliability.serving import obk_serve


def _get(sock: socket.socket, path: str) -> bytes:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_an_idle_connection_outlives_the_clients_idle_timeout(tmp_path: Path) -> None:
    with obk_serve(tmp_path / "home") as served:
        port = int(served.origin.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200")
            time.sleep(6)  # past 5 s: uvicorn's default would have closed it by now
            assert _get(sock, "/healthz").startswith(b"HTTP/1.1 200")
