"""ChatBotKit's official Node SDK (@chatbotkit/sdk from npm) against `obk serve`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.contract.conftest import LiveServer

NODE_DIR = Path(__file__).parent / "node"


@pytest.mark.contract
@pytest.mark.timeout(700)  # a suite gets 600 s of its own below
@pytest.mark.parametrize("suite", sorted(p.name for p in NODE_DIR.glob("*.test.mjs")))
def test_node_sdk_suite(live_server: LiveServer, suite: str) -> None:
    node = shutil.which("node")
    assert node, "Node 20+ is required for the SDK contract tests"
    assert (NODE_DIR / "node_modules" / "@chatbotkit" / "sdk").is_dir(), (
        "run `npm ci --prefix tests/contract/node` (make test does)"
    )
    env = {
        **live_server.env(),
        "OBK_URL": live_server.url,
        "OBK_TOKEN_A": live_server.token_a,
        "OBK_TOKEN_B": live_server.token_b,
    }
    proc = subprocess.run(
        [node, "--test", "--test-reporter=spec", suite],
        cwd=NODE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.contract
@pytest.mark.timeout(700)
def test_node_sdk_files_on_s3(live_server_s3: LiveServer) -> None:
    """The SDK's upload PUTs to the bucket's presigned URL; download, sync and search follow."""
    test_node_sdk_suite(live_server_s3, "files.test.mjs")
