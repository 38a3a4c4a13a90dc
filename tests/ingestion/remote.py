"""A remote server on loopback that answers as slowly as a hostile one: it sends its headers,
then a byte of body at a time until it is released (or, with `headers_first=False`, drips its
status line and headers too). For the fetcher's deadline and the server's admission."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Drip:
    """What the dripping server saw: requests begun, running now, and finished."""

    port: int
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    begun: list[str] = field(default_factory=list)
    running: int = 0
    most_running: int = 0
    finished: int = 0
    arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.arrived = threading.Condition(self.lock)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def wait_for(self, count: int, timeout_s: float = 30) -> None:
        """Until `count` requests are being answered at once."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.running >= count, timeout_s), self.running


def _handler(drip: Drip) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with drip.arrived:
                drip.begun.append(self.path)
                drip.running += 1
                drip.most_running = max(drip.most_running, drip.running)
                drip.arrived.notify_all()
            try:
                if self.path.startswith("/slow-headers"):
                    self._drip(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n")
                else:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()  # no length: the body ends when the connection does
                while not drip.release.is_set():
                    self.wfile.write(b"z")
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b" the end\n")
            except OSError:
                pass  # the fetcher gave up and closed the connection
            finally:
                with drip.arrived:
                    drip.running -= 1
                    drip.finished += 1
                    drip.arrived.notify_all()

        def _drip(self, data: bytes) -> None:
            for byte in data:
                if drip.release.is_set():
                    self.wfile.write(bytes([byte]))
                    continue
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def dripping_server() -> Iterator[Drip]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    drip = Drip(server.server_address[1])
    server.RequestHandlerClass = _handler(drip)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield drip
    finally:
        drip.release.set()
        server.shutdown()
        server.server_close()
