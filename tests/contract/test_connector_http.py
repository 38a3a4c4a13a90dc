"""The connector's HTTP backend against `obk serve`: the same envelope as the embedded run."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.contract.conftest import OBK, LiveServer

pytestmark = pytest.mark.contract


def connector(server: LiveServer, action: str, data: dict[str, Any], token: str) -> tuple[int, Any]:
    env = {**server.env(), "CHATBOTKIT_API_SECRET": token}
    proc = subprocess.run(
        [
            OBK,
            "connector",
            "run",
            "chatbotkit",
            "--action",
            action,
            "--json",
            "--base-url",
            server.url,
            "--data",
            json.dumps(data),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_same_envelope_as_embedded(live_server: LiveServer) -> None:
    code, created = connector(
        live_server, "create_bot", {"name": "via http", "meta": {"t": "h"}}, live_server.token_a
    )
    assert code == 0 and set(created) == {"data", "meta"} and created["meta"]["executionId"]
    code, listed = connector(live_server, "list_bots", {"meta": {"t": "h"}}, live_server.token_a)
    assert code == 0
    assert [b["id"] for b in listed["data"]["items"]] == [created["data"]["id"]]
    assert listed["data"]["cursor"] == ""


def test_server_errors_map_to_connector_codes(live_server: LiveServer) -> None:
    code, out = connector(live_server, "fetch_bot", {"botId": "missing"}, live_server.token_a)
    assert code == 1 and out["error"]["code"] == "not_found"
    code, out = connector(live_server, "list_bots", {}, "obk_not_a_secret")
    assert code == 1 and out["error"]["code"] == "not_authenticated"
    code, out = connector(
        live_server, "create_dataset", {"searchMaxRecords": 0}, live_server.token_a
    )
    assert code == 1 and out["error"]["code"] == "invalid_input"  # validated before sending
    bot_id = connector(live_server, "create_bot", {}, live_server.token_a)[1]["data"]["id"]
    code, out = connector(live_server, "fetch_bot", {"botId": bot_id}, live_server.token_b)
    assert code == 1 and out["error"]["code"] == "not_found"
