"""`obk serve --workers 2`: several processes serve one database."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.cli.test_connector import OBK
from tests.server.serving import free_port


@pytest.mark.parametrize("jobs", ["--worker", "--no-worker"])
def test_two_worker_processes_share_one_database(tmp_path: Path, jobs: str) -> None:
    env = {**os.environ, "OBK_HOME": str(tmp_path / "home")}
    token = json.loads(
        subprocess.run(
            [OBK, "secret", "create", "--account", "a", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )["token"]
    port = free_port()
    proc = subprocess.Popen(
        [OBK, "serve", "--port", str(port), "--workers", "2", jobs, "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base, headers = f"http://127.0.0.1:{port}/api/v1", {"Authorization": f"Bearer {token}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(base + "/openapi.json", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        with httpx.Client(headers=headers, timeout=30) as client:
            created = {
                client.post(base + "/bot/create", json={"name": f"b{i}"}).json()["id"]
                for i in range(20)
            }
            # Each request may land on either process; every one sees every bot.
            for _ in range(10):
                listed = {b["id"] for b in client.get(base + "/bot/list").json()["items"]}
                assert listed == created
    finally:
        proc.terminate()
        proc.wait(timeout=30)
