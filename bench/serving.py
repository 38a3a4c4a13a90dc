"""What the benches that serve share: a free loopback port, a secret from the real `obk`,
waiting until a server answers (or fails early when its process has exited), and reading a
server's processes and their client connections from /proc (tests use these too)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

OBK = str(Path(sys.executable).parent / "obk")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def new_secret(env: Mapping[str, str], account: str) -> str:
    """A new API token for `account`, made by `obk secret create` as a user would."""
    made = subprocess.run(
        [OBK, "secret", "create", "--account", account, "--json"],
        env=dict(env),
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(made.stdout)["token"])


def wait_ready(url: str, proc: subprocess.Popen[bytes], seconds: float = 120) -> None:
    """Return once `url` answers; raise if the server's process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}") from None
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {seconds:.0f} s")


def process_tree(root: int) -> dict[int, tuple[int, bool]]:
    """pid -> (resident bytes, whether it is an API process) of `root` and its descendants:
    the uvicorn supervisor, its worker processes, and multiprocessing's resource tracker."""
    found: dict[int, tuple[int, bool]] = {}
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss = int(next(x for x in status.splitlines() if x.startswith("VmRSS")).split()[1])
            worker = b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            found[pid] = (rss * 1024, worker)
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return found


def connections_by_process(pids: set[int], port: int) -> dict[int, int]:
    """How many established connections to `port` each of `pids` holds (read from /proc): the
    kernel hands each new connection to one API process for its whole life."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                    inodes.add(fields[9])
    counts = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # the process has gone
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            counts[pid] = 0
            for fd in fds:
                with contextlib.suppress(OSError):  # closed since it was listed
                    link = os.readlink(fd)
                    counts[pid] += link.startswith("socket:[") and link[8:-1] in inodes
    return counts
