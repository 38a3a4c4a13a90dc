"""A real server in its own process (`obk serve`, or another program that answers HTTP), started
and waited for in one way by every test that needs one.

Its output goes to a log file, never to a pipe nobody reads (a full pipe stalls the server), and
a server that exits or does not answer in time fails the test with the end of that log: the
reason it did not start, instead of a bare "did not start"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.cli.test_connector import OBK
from tests.server.serving import free_port

# What `obk serve` answers once its app is up (it needs no secret).
READY_PATH = "/api/v1/openapi.json"
# How much of a server's log a failure quotes (the end, where the reason is).
LOG_TAIL_CHARS = 4000


@dataclass
class Served:
    """A running server: its origin, one secret per account, and the process."""

    origin: str
    home: Path
    tokens: dict[str, str]
    process: subprocess.Popen[bytes]
    env: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    @property
    def base(self) -> str:
        return self.origin + "/api/v1"

    def headers(self, account: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[account]}"}


def obk_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OBK_", "CHATBOTKIT_"))}
    env.update(OBK_HOME=str(home), HF_HUB_OFFLINE="1", **extra)
    return env


def create_secret(env: dict[str, str], account: str, *limits: str) -> str:
    """A new secret of `account`; `limits` are `obk secret create` options (`--bot`, `--scope`,
    ...), none for a key that may do everything."""
    out = subprocess.run(
        [OBK, "secret", "create", "--account", account, *limits, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return str(json.loads(out)["token"])


def serve_args(port: int, *extra: str, workers: int = 1) -> list[str]:
    """`obk serve` on 127.0.0.1:`port`, quiet unless `extra` says otherwise (a later
    `--log-level` wins)."""
    args = [OBK, "serve", "--port", str(port), "--log-level", "warning"]
    if workers > 1:
        args += ["--workers", str(workers)]
    return [*args, *extra]


def serve_log(env: dict[str, str], port: int) -> Path:
    """Where a server started with `env` on `port` logs: beside its home, not in it."""
    return Path(env["OBK_HOME"]).with_suffix(f".{port}.log")


def spawn(
    args: Sequence[str], env: dict[str, str], log: Path, stdout: int | None = None
) -> subprocess.Popen[bytes]:
    """`args` in a process of their own, stderr (and stdout, unless `stdout` says otherwise,
    e.g. subprocess.PIPE for a test that reads it) appended to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        target: int | IO[bytes] = out if stdout is None else stdout
        return subprocess.Popen(list(args), env=env, stdout=target, stderr=out)


def log_tail(log: Path) -> str:
    if not log.exists():
        return "(no log)"
    text = log.read_bytes().decode(errors="replace")
    return text[-LOG_TAIL_CHARS:] if text.strip() else "(the log is empty)"


def wait_ready(
    url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float = 90
) -> None:
    """Until `url` answers 200. If the process exits first, or `timeout_s` passes, the test
    fails with what the process wrote to `log`."""
    args = process.args
    command = " ".join(map(str, args)) if isinstance(args, list | tuple) else str(args)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        code = process.poll()
        if code is not None:
            pytest.fail(
                f"`{command}` exited with {code} before {url} answered; its log ({log}):\n"
                + log_tail(log),
                pytrace=False,
            )
        if time.monotonic() > deadline:
            pytest.fail(
                f"`{command}` did not answer {url} within {timeout_s:g} s; its log ({log}):\n"
                + log_tail(log),
                pytrace=False,
            )
        time.sleep(0.1)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


@contextmanager
def running(
    args: Sequence[str],
    env: dict[str, str],
    log: Path,
    ready: str | None = None,
    stdout: int | None = None,
    timeout_s: float = 90,
) -> Iterator[subprocess.Popen[bytes]]:
    """`args` running until the block ends (SIGTERM, then SIGKILL after 30 s); with `ready`, the
    block starts once that URL answers 200 (see wait_ready)."""
    process = spawn(args, env, log, stdout)
    try:
        if ready is not None:
            wait_ready(ready, process, log, timeout_s)
        yield process
    finally:
        stop(process)


@contextmanager
def obk_serve(
    home: Path, accounts: tuple[str, ...] = ("a",), workers: int = 1, **settings: str
) -> Iterator[Served]:
    """Secrets for `accounts`, then `obk serve` until the block ends."""
    env = obk_env(home, **settings)
    tokens = {account: create_secret(env, account) for account in accounts}
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    log = serve_log(env, port)
    with running(serve_args(port, workers=workers), env, log, origin + READY_PATH) as process:
        yield Served(origin, home, tokens, process, env, log)
