"""What the benches that serve share: a free loopback port, a secret from the real `obk`, and
waiting until a server answers (or fails early when its process has exited)."""

from __future__ import annotations

import json
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
