"""The connector's HTTP backend against `obk serve`: the same envelope as the embedded run."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.contract.conftest import OBK, LiveServer

pytestmark = pytest.mark.contract


def connector(
    server: LiveServer, action: str, data: dict[str, Any], token: str, *, http: bool = True
) -> tuple[int, Any]:
    """`obk connector run` with the HTTP backend (or, with http=False, the embedded engine)."""
    env = {**server.env(), "CHATBOTKIT_API_SECRET": token}
    remote = ["--base-url", server.url] if http else []
    proc = subprocess.run(
        [
            OBK,
            "connector",
            "run",
            "chatbotkit",
            "--action",
            action,
            "--json",
            *remote,
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


def shape(value: Any) -> Any:
    """The keys (recursively) and JSON types of a value, without the values."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_envelope_shapes_match_the_embedded_run(live_server: LiveServer) -> None:
    bot = {"name": "shape", "backstory": "b", "meta": {"k": "shape"}, "visibility": "private"}
    seen = []
    for run_over_http in (False, True):
        code, made = connector(
            live_server, "create_bot", bot, live_server.token_a, http=run_over_http
        )
        assert code == 0
        code, listed = connector(
            live_server,
            "list_bots",
            {"meta": {"k": "shape"}},
            live_server.token_a,
            http=run_over_http,
        )
        assert code == 0
        code, missing = connector(
            live_server, "fetch_bot", {"botId": "nope"}, live_server.token_a, http=run_over_http
        )
        assert code == 1
        seen.append([shape(made), shape(listed), shape(missing)])
    assert seen[0] == seen[1]


def test_verify_message_over_http(live_server: LiveServer) -> None:
    token = live_server.token_a
    dataset = connector(live_server, "create_dataset", {}, token)[1]["data"]["id"]
    text = "Water boils at 100 degrees at sea level."
    record = connector(
        live_server, "create_dataset_record", {"datasetId": dataset, "text": text}, token
    )[1]["data"]["id"]
    conv = connector(live_server, "create_conversation", {}, token)[1]["data"]["id"]
    meta = {"citations": [{"recordId": record, "datasetId": dataset, "quote": text}]}
    message = connector(
        live_server,
        "create_conversation_message",
        {"conversationId": conv, "type": "bot", "text": text, "meta": meta},
        token,
    )[1]["data"]["id"]
    ref = {"conversationId": conv, "messageId": message}
    code, out = connector(live_server, "verify_message", ref, token)
    assert code == 0 and out["data"] == {
        "ok": True,
        "citations": [{"recordId": record, "ok": True}],
    }
    code, out = connector(live_server, "verify_message", ref, live_server.token_b)
    assert code == 1 and out["error"]["code"] == "not_found"
