"""A real `obk serve` on loopback, with two accounts' secrets, shared by the contract suite."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server.serving import free_port

BIN = Path(sys.executable).parent
OBK = shutil.which("obk", path=str(BIN)) or "obk"


COVERAGE_TEST = "test_every_action_is_answered_over_http"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The coverage check reads what every other contract test did, so it runs last."""
    last = [item for item in items if item.name == COVERAGE_TEST]
    items[:] = [item for item in items if item.name != COVERAGE_TEST] + last


@dataclass(frozen=True)
class LiveServer:
    url: str
    token_a: str
    token_b: str
    home: Path

    def env(self) -> dict[str, str]:
        """The environment a client subprocess needs (the obk CLI, node)."""
        return {**os.environ, "OBK_HOME": str(self.home)}


def _secret(home: Path, account: str) -> str:
    env = {**os.environ, "OBK_HOME": str(home)}
    out = subprocess.run(
        [OBK, "secret", "create", "--account", account, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return str(json.loads(out.stdout)["token"])


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    home = tmp_path_factory.mktemp("serve-home")
    token_a, token_b = _secret(home, "account-a"), _secret(home, "account-b")
    port = free_port()
    env = {**os.environ, "OBK_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        # Access lines (log level info) let test_coverage.py see which routes clients reached.
        [OBK, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/api/v1/openapi.json", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"obk serve did not start: {(home / 'serve.log').read_text()}")
        time.sleep(0.1)
    try:
        yield LiveServer(url, token_a, token_b, home)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
