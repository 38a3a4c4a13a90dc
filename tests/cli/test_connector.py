"""The connector CLI through the real `obk` entry point, as an agent or a person runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

OBK = shutil.which("obk", path=str(Path(sys.executable).parent)) or "obk"


def obk(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [OBK, *args], capture_output=True, text=True, input=stdin, env=os.environ, timeout=120
    )


def run_json(action: str, data: dict[str, Any] | None = None, *flags: str) -> tuple[int, Any]:
    args = ["connector", "run", "chatbotkit", "--action", action, "--json", *flags]
    if data is not None:
        args += ["--data", json.dumps(data)]
    proc = obk(*args)
    return proc.returncode, json.loads(proc.stdout)


def test_list_shows_every_action_with_its_effect() -> None:
    proc = obk("connector", "list", "chatbotkit", "--json")
    assert proc.returncode == 0
    actions = {a["action"]: a["effect"] for a in json.loads(proc.stdout)["actions"]}
    assert actions["create_bot"] == "write"
    assert actions["delete_bot"] == "destructive"
    assert actions["list_bots"] == "read"


def test_schema_has_path_id_in_input_and_output_schema() -> None:
    proc = obk("connector", "schema", "chatbotkit", "--action", "update_bot")
    schema = json.loads(proc.stdout)
    assert schema["action"] == "update_bot" and schema["effect"] == "write"
    assert "botId" in schema["input"]["properties"]
    assert "botId" in schema["input"]["required"]
    assert schema["output"]["properties"]["id"]["type"] == "string"


def test_bot_lifecycle_through_the_cli() -> None:
    code, created = run_json("create_bot", {"name": "Helper", "meta": {"env": "cli"}})
    assert code == 0 and set(created) == {"data", "meta"}
    assert created["meta"]["executionId"]
    bot_id = created["data"]["id"]
    assert run_json("update_bot", {"botId": bot_id, "backstory": "Be brief."})[0] == 0
    _, fetched = run_json("fetch_bot", {"botId": bot_id})
    assert fetched["data"]["backstory"] == "Be brief."
    run_json("create_bot", {"name": "Other", "meta": {"env": "elsewhere"}})
    _, listed = run_json("list_bots", {"meta": {"env": "cli"}})
    assert [b["id"] for b in listed["data"]["items"]] == [bot_id]
    code, deleted = run_json("delete_bot", {"botId": bot_id}, "--yes")
    assert code == 0 and deleted["data"] == {"id": bot_id}
    code, missing = run_json("fetch_bot", {"botId": bot_id})
    assert code == 1 and missing["error"]["code"] == "not_found"


def test_bad_input_exits_1_naming_the_field_on_stderr_and_in_the_envelope() -> None:
    proc = obk(
        "connector",
        "run",
        "chatbotkit",
        "--action",
        "create_bot",
        "--json",
        "--data",
        '{"name": 5}',
    )
    assert proc.returncode == 1
    error = json.loads(proc.stdout)["error"]
    assert error["code"] == "invalid_input" and error["status"] == 400
    assert error["details"][0]["pointer"] == "/name"
    assert proc.stderr.count("\n") == 1 and "invalid_input" in proc.stderr


@pytest.mark.parametrize("data", ["[1, 2]", "not json", '"text"'])
def test_data_that_is_not_an_object_is_invalid_input(data: str) -> None:
    proc = obk("connector", "run", "chatbotkit", "--action", "create_bot", "--json", "--data", data)
    assert proc.returncode == 1
    assert json.loads(proc.stdout)["error"]["code"] == "invalid_input"


def test_data_from_file(tmp_path: Path) -> None:
    payload = tmp_path / "bot.json"
    payload.write_text('{"name": "From file"}')
    code, out = run_json("create_bot", None, "--data", f"@{payload}")
    assert code == 0
    assert run_json("fetch_bot", {"botId": out["data"]["id"]})[1]["data"]["name"] == "From file"


def test_data_from_stdin() -> None:
    proc = obk(
        "connector",
        "run",
        "chatbotkit",
        "--action",
        "create_bot",
        "--json",
        "--data",
        "-",
        stdin='{"name": "From stdin"}',
    )
    bot_id = json.loads(proc.stdout)["data"]["id"]
    assert run_json("fetch_bot", {"botId": bot_id})[1]["data"]["name"] == "From stdin"


def test_delete_without_yes_is_refused_and_deletes_nothing() -> None:
    bot_id = run_json("create_bot", {"name": "keep"})[1]["data"]["id"]
    code, out = run_json("delete_bot", {"botId": bot_id})
    assert code == 1 and out["error"]["code"] == "confirmation_required"
    assert run_json("fetch_bot", {"botId": bot_id})[0] == 0


def test_dry_run_validates_only() -> None:
    proc = obk(
        "connector",
        "run",
        "chatbotkit",
        "--action",
        "create_bot",
        "--dry-run",
        "--data",
        '{"name": "x"}',
    )
    assert json.loads(proc.stdout) == {
        "dryRun": True,
        "ok": True,
        "action": "create_bot",
        "effect": "write",
    }
    assert run_json("list_bots")[1]["data"]["items"] == []
    assert (
        obk(
            "connector",
            "run",
            "chatbotkit",
            "--action",
            "create_bot",
            "--dry-run",
            "--data",
            '{"bad": 1}',
        ).returncode
        == 1
    )


def test_unknown_action_and_service() -> None:
    code, out = run_json("no_such_action")
    assert code == 1 and out["error"]["code"] == "unknown_action"
    proc = obk("connector", "run", "slack", "--action", "list_bots", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["error"]["code"] == "unknown_service"


def test_pagination_with_cursor_through_the_cli() -> None:
    ids = [run_json("create_bot", {"name": f"b{i}"})[1]["data"]["id"] for i in range(5)]
    seen: list[str] = []
    cursor = ""
    while True:
        page = run_json("list_bots", {"take": 2, "order": "asc", "cursor": cursor})[1]["data"]
        seen += [b["id"] for b in page["items"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen == ids


def test_every_run_is_recorded_as_an_execution() -> None:
    _, ok = run_json("create_bot", {})
    _, bad = run_json("fetch_bot", {"botId": "missing"})
    proc = obk("connector", "executions", "--json")
    items = {e["executionId"]: e for e in json.loads(proc.stdout)["items"]}
    assert items[ok["meta"]["executionId"]]["status"] == "ok"
    failed = items[bad["meta"]["executionId"]]
    assert (failed["status"], failed["errorCode"], failed["action"]) == (
        "error",
        "not_found",
        "fetch_bot",
    )


def test_readable_output_without_json() -> None:
    bot_id = run_json("create_bot", {"name": "Readable"})[1]["data"]["id"]
    proc = obk(
        "connector",
        "run",
        "chatbotkit",
        "--action",
        "fetch_bot",
        "--data",
        json.dumps({"botId": bot_id}),
    )
    assert proc.returncode == 0
    assert "Readable" in proc.stdout and bot_id in proc.stdout
    assert not proc.stdout.lstrip().startswith("{")


def test_secret_create_list_revoke() -> None:
    proc = obk("secret", "create", "--account", "acme", "--json")
    created = json.loads(proc.stdout)
    assert created["account"] == "acme" and created["token"].startswith("obk_")
    listed = json.loads(obk("secret", "list", "--json").stdout)["items"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert created["token"] not in json.dumps(listed)
    assert obk("secret", "revoke", created["id"]).returncode == 0
    assert json.loads(obk("secret", "list", "--json").stdout)["items"][0]["revokedAt"]
    assert obk("secret", "revoke", "nope").returncode == 1


def test_stream_prints_tokens_as_they_come() -> None:
    conv = run_json("create_conversation", {"model": "smollm2/maxTokens=32/temperature=0"})[1]
    args = [
        "connector",
        "run",
        "chatbotkit",
        "--action",
        "complete_conversation",
        "--stream",
        "--data",
        json.dumps({"conversationId": conv["data"]["id"], "text": "Count from one to fifty."}),
    ]
    with subprocess.Popen(
        [OBK, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ
    ) as proc:
        assert proc.stdout is not None
        first = os.read(proc.stdout.fileno(), 4096)  # what has been printed so far, unbuffered
        # The first tokens are out while the answer is still being generated.
        assert first, "nothing was printed"
        assert proc.poll() is None, "the first token was printed only as the process exited"
        rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode(errors="replace")
    printed = (first + rest).decode().strip()
    messages = run_json("list_conversation_messages", {"conversationId": conv["data"]["id"]})[1]
    assert messages["data"]["items"][1]["text"] == printed
    events = obk(*args, "--json").stdout.strip().splitlines()
    kinds = [json.loads(line).get("type") for line in events[:-1]]
    assert kinds[0] == "completeBegin" and kinds[-1] == "result"
    assert set(json.loads(events[-1])) == {"data", "meta"}
