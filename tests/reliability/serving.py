"""A real `obk serve` on a free loopback port, in its own process, for the reliability suite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.cli.test_connector import OBK
from tests.server.serving import free_port


@dataclass
class Served:
    """A running server: its origin, one secret per account, and the process."""

    origin: str
    home: Path
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.origin + "/api/v1"

    def headers(self, account: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[account]}"}


def obk_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBK_", "CHATBOTKIT_"))}
    env.update(OBK_HOME=str(home), HF_HUB_OFFLINE="1", **extra)
    return env


def create_secret(env: dict[str, str], account: str) -> str:
    out = subprocess.run(
        [OBK, "secret", "create", "--account", account, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(json.loads(out)["token"])


def start(env: dict[str, str], port: int, workers: int = 1) -> subprocess.Popen[bytes]:
    args = [OBK, "serve", "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        args += ["--workers", str(workers)]
    # stderr to a file (a pipe nobody reads could fill and stall the server).
    log = Path(env["OBK_HOME"]).with_suffix(f".{port}.log")
    with log.open("ab") as err:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=err)


def wait_ready(origin: str, process: subprocess.Popen[bytes], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            httpx.get(origin + "/api/v1/openapi.json", timeout=2)
            return
        except httpx.HTTPError:
            if process.poll() is not None:
                raise RuntimeError(
                    "obk serve exited: "
                    + (process.stderr.read() if process.stderr else b"").decode(errors="replace")[
                        -2000:
                    ]
                ) from None
            assert time.monotonic() < deadline, "obk serve did not start"
            time.sleep(0.2)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def obk_serve(
    home: Path, accounts: tuple[str, ...] = ("a",), workers: int = 1, **settings: str
) -> Iterator[Served]:
    """Secrets for `accounts`, then `obk serve` until the block ends."""
    env = obk_env(home, **settings)
    tokens = {account: create_secret(env, account) for account in accounts}
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    process = start(env, port, workers)
    try:
        wait_ready(origin, process)
        yield Served(origin, home, tokens, process, env)
    finally:
        stop(process)
