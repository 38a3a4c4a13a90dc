"""MCP over Streamable HTTP at a real `obk serve`'s /mcp, with the official Python client."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import pytest

from tests.contract.conftest import OBK, LiveServer
from tests.mcp_server.clients import (
    INITIALIZE,
    check_errors,
    check_flow,
    check_tools,
    error,
    http_client,
    ok,
    stdio_client,
)

pytestmark = pytest.mark.contract


def test_http_lists_every_action_without_local_paths(live_server: LiveServer) -> None:
    async def main() -> None:
        async with http_client(live_server.url, live_server.token_a) as client:
            check_tools((await client.list_tools()).tools, local=False)

    anyio.run(main)


@pytest.mark.slow
def test_http_flow_dataset_search_bot_conversation_completion(live_server: LiveServer) -> None:
    async def main() -> None:
        async with http_client(live_server.url, live_server.token_a) as client:
            await check_flow(client)

    anyio.run(main)


def test_http_errors_are_tool_results_with_codes(live_server: LiveServer) -> None:
    async def main() -> None:
        async with http_client(live_server.url, live_server.token_a) as client:
            await check_errors(client)

    anyio.run(main)


def test_http_each_secret_sees_only_its_account(live_server: LiveServer) -> None:
    async def main() -> None:
        async with (
            http_client(live_server.url, live_server.token_a) as a,
            http_client(live_server.url, live_server.token_b) as b,
        ):
            bot = ok(await a.call_tool("create_bot", {"name": "A's only"}))["id"]
            error(await b.call_tool("fetch_bot", {"botId": bot}), "not_found")
            error(await b.call_tool("delete_bot", {"botId": bot}), "not_found")
            listed = ok(await b.call_tool("list_bots", {}))["items"]
            assert bot not in {item["id"] for item in listed}
            assert ok(await a.call_tool("fetch_bot", {"botId": bot}))["name"] == "A's only"

    anyio.run(main)


def test_http_refuses_local_paths(live_server: LiveServer, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text("server-side file")

    async def main() -> None:
        async with http_client(live_server.url, live_server.token_a) as client:
            file_id = ok(await client.call_tool("create_file", {"name": "x.txt"}))["id"]
            err = error(
                await client.call_tool(
                    "upload_file", {"fileId": file_id, "path": str(secret_file)}
                ),
                "invalid_input",
            )
            assert err["details"] == [
                {
                    "pointer": "/path",
                    "rule": "local_only",
                    "message": "not accepted over the network",
                }
            ]
            error(
                await client.call_tool("download_file", {"fileId": file_id, "path": str(tmp_path)}),
                "invalid_input",
            )
            # The content itself travels fine, and the link it gets is absolute.
            up = ok(
                await client.call_tool(
                    "upload_file", {"fileId": file_id, "file": "data:text/plain,hello"}
                )
            )
            link = up["downloadRequest"]["url"]
            assert link.startswith(live_server.url + "/api/v1/file/")
            assert httpx.get(link).text == "hello"

    anyio.run(main)


@pytest.mark.parametrize("authorization", [None, "Bearer obk_not_a_secret", "Basic abc"])
def test_http_without_a_live_secret_is_401(live_server: LiveServer, authorization: str) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    resp = httpx.post(live_server.url + "/mcp", json=INITIALIZE, headers=headers)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["code"] == "NOT_AUTHENTICATED"


def test_http_revoked_secret_is_401(live_server: LiveServer) -> None:
    env = live_server.env()
    created = subprocess.run(
        [OBK, "secret", "create", "--account", "account-a", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    secret = json.loads(created.stdout)
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {secret['token']}",
    }
    before = httpx.post(live_server.url + "/mcp", json=INITIALIZE, headers=headers)
    assert before.status_code == 200
    subprocess.run([OBK, "secret", "revoke", secret["id"]], env=env, check=True)
    # A server remembers a secret it accepted for a few seconds (its auth cache).
    for _ in range(80):
        after = httpx.post(live_server.url + "/mcp", json=INITIALIZE, headers=headers)
        if after.status_code == 401:
            break
        time.sleep(0.1)
    assert after.status_code == 401
    assert after.headers["www-authenticate"] == "Bearer"


def test_http_tools_obey_a_keys_scope_and_resources(live_server: LiveServer) -> None:
    """A scoped key is checked by the engine for MCP calls as for REST (issue: keys)."""
    env = live_server.env()

    def key(*limits: str) -> str:
        made = subprocess.run(
            [OBK, "secret", "create", "--account", "account-a", "--json", *limits],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return str(json.loads(made.stdout)["token"])

    async def main() -> None:
        async with http_client(live_server.url, live_server.token_a) as full:
            mine = ok(await full.call_tool("create_bot", {"name": "in reach"}))["id"]
            other = ok(await full.call_tool("create_bot", {"name": "out of reach"}))["id"]
        async with http_client(live_server.url, key("--scope", "read")) as reader:
            assert ok(await reader.call_tool("fetch_bot", {"botId": mine}))["name"] == "in reach"
            error(await reader.call_tool("create_bot", {"name": "no"}), "scope_missing")
        async with http_client(live_server.url, key("--bot", mine)) as one_bot:
            assert ok(await one_bot.call_tool("fetch_bot", {"botId": mine}))["id"] == mine
            error(await one_bot.call_tool("fetch_bot", {"botId": other}), "scope_missing")

    anyio.run(main)


def test_stdio_against_a_server_acts_as_the_secrets_account(
    live_server: LiveServer, tmp_path: Path
) -> None:
    """`obk mcp --base-url` uses the connector's HTTP backend: the secret picks the account."""

    async def main() -> None:
        env = {"CHATBOTKIT_API_SECRET": live_server.token_a}
        async with stdio_client(
            tmp_path / "client-home", "--base-url", live_server.url, env=env
        ) as remote:
            bot = ok(await remote.call_tool("create_bot", {"name": "via stdio"}))["id"]
            error(await remote.call_tool("fetch_bot", {"botId": "nope"}), "not_found")
        async with http_client(live_server.url, live_server.token_a) as a:
            assert ok(await a.call_tool("fetch_bot", {"botId": bot}))["name"] == "via stdio"
        async with http_client(live_server.url, live_server.token_b) as b:
            error(await b.call_tool("fetch_bot", {"botId": bot}), "not_found")

    anyio.run(main)


def _headers(token: str, **extra: str) -> dict[str, str]:
    return {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": "2025-06-18",
        **extra,
    }


@pytest.mark.parametrize(
    ("origin", "host"),
    [
        ("http://evil.example.com", None),  # a page elsewhere, straight to the server
        ("http://evil.example.com", "evil.example.com"),  # a rebound name: Host agrees
        ("null", None),  # a sandboxed or file: page
        ("http://127.0.0.1:1", None),  # loopback, but another port: another origin
    ],
)
def test_http_a_foreign_origin_is_403_even_with_a_live_secret(
    live_server: LiveServer, origin: str, host: str | None
) -> None:
    extra = {"Origin": origin, **({"Host": host} if host else {})}
    resp = httpx.post(
        live_server.url + "/mcp", json=INITIALIZE, headers=_headers(live_server.token_a, **extra)
    )
    assert resp.status_code == 403
    assert resp.json()["code"] == "NOT_AUTHORIZED"
    assert "OBK_CORS_ORIGINS" in resp.json()["message"]


def test_http_no_origin_or_the_servers_own_origin_is_served(live_server: LiveServer) -> None:
    own = live_server.url  # http://127.0.0.1:PORT: the Host of these requests
    localhost = f"localhost:{urlsplit(live_server.url).port}"
    for extra in ({}, {"Origin": own}, {"Origin": f"http://{localhost}", "Host": localhost}):
        resp = httpx.post(
            live_server.url + "/mcp",
            json=INITIALIZE,
            headers=_headers(live_server.token_a, **extra),
        )
        assert resp.status_code == 200, (extra, resp.text)


def _events(resp: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in resp.iter_lines():
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


def _cancel_after_progress(live_server: LiveServer, canceller: str) -> tuple[int, dict[str, Any]]:
    """A completion streaming progress (request id 7) and, after its third token, a
    `notifications/cancelled` for id 7 in a request of its own with `canceller`'s secret; the
    tokens seen and the call's last message."""
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call"}
    model = {"model": "smollm2/maxTokens=400/temperature=0"}
    made = {**call, "params": {"name": "create_conversation", "arguments": model}}
    created = httpx.post(live_server.url + "/mcp", json=made, headers=_headers(live_server.token_a))
    conversation = next(_events(created))["result"]["structuredContent"]["id"]
    arguments = {
        "conversationId": conversation,
        "text": "Write the numbers from 1 to 300, separated by commas.",
    }
    params = {"name": "complete_conversation", "arguments": arguments}
    body = {**call, "id": 7, "params": {**params, "_meta": {"progressToken": "t"}}}
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7}}
    tokens = 0
    with httpx.stream(
        "POST",
        live_server.url + "/mcp",
        json=body,
        headers=_headers(live_server.token_a),
        timeout=300,
    ) as resp:
        for event in _events(resp):
            if event.get("method") != "notifications/progress":
                return tokens, event
            tokens += 1
            if tokens == 3:
                sent = httpx.post(
                    live_server.url + "/mcp", json=cancel, headers=_headers(canceller)
                )
                assert sent.status_code == 202
    raise AssertionError("the call's stream ended without an answer")


@pytest.mark.slow
def test_http_notifications_cancelled_stops_the_call(live_server: LiveServer) -> None:
    tokens, last = _cancel_after_progress(live_server, live_server.token_a)
    assert last["id"] == 7 and "result" not in last
    assert last["error"] == {"code": -32800, "message": "Request cancelled"}
    assert tokens < 20  # not the rest of a 400-token answer


@pytest.mark.slow
def test_http_another_secret_cannot_cancel_a_call(live_server: LiveServer) -> None:
    """Request ids are the client's choice: a cancel counts only with the call's own secret."""
    tokens, last = _cancel_after_progress(live_server, live_server.token_b)
    assert last["id"] == 7 and "error" not in last
    assert last["result"]["isError"] is False and last["result"]["structuredContent"]["text"]
    assert tokens > 3


def test_http_an_unknown_tool_is_a_json_rpc_invalid_params_error(live_server: LiveServer) -> None:
    call = {"name": "no_such_tool", "arguments": {}}
    resp = httpx.post(
        live_server.url + "/mcp",
        json={"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": call},
        headers=_headers(live_server.token_a),
    )
    [answer] = list(_events(resp))
    assert answer["id"] == 3 and "result" not in answer
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"] == {"code": "unknown_action"}
