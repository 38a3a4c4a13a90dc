"""`obk serve --workers 2` evens out its clients' keep-alive connections: all of them start on
one process (the other is stopped while they connect), and within seconds each process holds
half, with every request answered."""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time
from pathlib import Path

from bench.serving import connections_by_process, process_tree

from openbotkit.settings import SERVE_PEERS_ENV
from tests.reliability.serving import obk_serve

CLIENTS = 12


def api_processes(supervisor: int) -> list[int]:
    return [pid for pid, (_rss, api) in process_tree(supervisor).items() if api]


def connections(pid: int, port: int) -> int:
    """Established connections to `port` that process `pid` holds."""
    return connections_by_process({pid}, port).get(pid, 0)


def peers_folder(pid: int) -> Path:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = next(e for e in environ if e.startswith(SERVE_PEERS_ENV.encode() + b"="))
    return Path(found.split(b"=", 1)[1].decode())


def test_connections_even_out_across_api_processes(tmp_path: Path) -> None:
    with obk_serve(tmp_path / "home", workers=2) as served:
        port = int(served.origin.rsplit(":", 1)[1])
        deadline = time.monotonic() + 60
        while len(pids := api_processes(served.process.pid)) < 2:
            assert time.monotonic() < deadline, "two API processes did not start"
            time.sleep(0.2)
        folder = peers_folder(pids[0])
        while len(list(folder.iterdir())) < 2:  # both apps are up and publish their counts
            assert time.monotonic() < deadline, "the API processes do not publish counts"
            time.sleep(0.2)

        first, second = pids
        clients = [http.client.HTTPConnection("127.0.0.1", port, 30) for _ in range(CLIENTS)]
        os.kill(second, signal.SIGSTOP)  # every connection now goes to the first process
        try:
            for client in clients:
                client.request("GET", "/healthz")
                assert client.getresponse().read() == b'{"status":"ok"}'
        finally:
            os.kill(second, signal.SIGCONT)
        assert (connections(first, port), connections(second, port)) == (CLIENTS, 0)

        statuses: list[int] = []
        failures: list[BaseException] = []
        stop = threading.Event()

        def keep_asking(client: http.client.HTTPConnection) -> None:
            # http.client opens a new connection by itself after a `Connection: close`.
            try:
                while not stop.is_set():
                    client.request("GET", "/healthz")
                    response = client.getresponse()
                    response.read()
                    statuses.append(response.status)
                    time.sleep(0.05)
            except BaseException as exc:  # reported by the test below
                failures.append(exc)

        threads = [threading.Thread(target=keep_asking, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        try:
            deadline = time.monotonic() + 30
            while True:
                held = (connections(first, port), connections(second, port))
                if sorted(held) == [CLIENTS // 2, CLIENTS // 2]:
                    break
                assert time.monotonic() < deadline, f"connections did not even out: {held}"
                time.sleep(0.5)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            for client in clients:
                client.close()
        assert not failures, failures
        assert statuses and set(statuses) == {200}
    assert not folder.exists()  # `obk serve` removes the folder when it stops
