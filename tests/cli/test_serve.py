"""`obk serve --workers 2`: several processes serve one database."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.reliability.serving import create_secret, running, serve_args
from tests.server.serving import free_port


@pytest.mark.parametrize("jobs", ["--worker", "--no-worker"])
def test_two_worker_processes_share_one_database(tmp_path: Path, jobs: str) -> None:
    env = {**os.environ, "OBK_HOME": str(tmp_path / "home")}
    token = create_secret(env, "a")
    port = free_port()
    base, headers = f"http://127.0.0.1:{port}/api/v1", {"Authorization": f"Bearer {token}"}
    args = serve_args(port, jobs, workers=2)
    with (
        running(args, env, tmp_path / "serve.log", base + "/openapi.json"),
        httpx.Client(headers=headers, timeout=30) as client,
    ):
        created = {
            client.post(base + "/bot/create", json={"name": f"b{i}"}).json()["id"]
            for i in range(20)
        }
        # Each request may land on either process; every one sees every bot.
        for _ in range(10):
            listed = {b["id"] for b in client.get(base + "/bot/list").json()["items"]}
            assert listed == created
