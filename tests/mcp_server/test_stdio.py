"""`obk mcp` on stdio, driven by the official Python MCP client as a subprocess."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import pytest

from openbotkit.actions import REGISTRY, Effect
from tests.mcp_server.clients import (
    OBK,
    check_errors,
    check_flow,
    check_tools,
    error,
    not_offered,
    ok,
    stdio_client,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "obk-home"


def test_stdio_lists_every_action_as_a_tool_with_local_paths(home: Path) -> None:
    async def main() -> None:
        async with stdio_client(home) as client:
            check_tools((await client.list_tools()).tools, local=True)

    anyio.run(main)


@pytest.mark.slow
def test_stdio_flow_dataset_search_bot_conversation_completion(home: Path) -> None:
    async def main() -> None:
        async with stdio_client(home) as client:
            await check_flow(client)

    anyio.run(main)


def test_stdio_errors_are_tool_results_with_codes(home: Path) -> None:
    async def main() -> None:
        async with stdio_client(home) as client:
            await check_errors(client)

    anyio.run(main)


def test_stdio_read_only_lists_and_runs_only_reads(home: Path) -> None:
    async def main() -> None:
        async with stdio_client(home, "--read-only") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == [a.name for a in REGISTRY if a.effect is Effect.READ]
            # Not listed, and no tool of this server when called anyway.
            refused = await not_offered(client, "create_bot", {"name": "x"})
            assert "read-only" in refused.message
            await not_offered(client, "delete_bot", {"botId": "x"})
            assert ok(await client.call_tool("list_bots", {}))["items"] == []

    anyio.run(main)


def test_stdio_tools_and_toolsets_select_what_is_offered(home: Path) -> None:
    async def main() -> None:
        async with stdio_client(home, "--toolset", "bots", "--tools", "fetch_usage") as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == [
                a.name for a in REGISTRY if a.resource == "bot" or a.name == "fetch_usage"
            ]
            bot = ok(await client.call_tool("create_bot", {"name": "b"}))["id"]
            assert ok(await client.call_tool("fetch_bot", {"botId": bot}))["name"] == "b"
            await not_offered(client, "list_datasets", {})

    anyio.run(main)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--toolset", "bots,robots"], "no toolset 'robots'; toolsets: bot, contact, conversation"),
        (["--tools", "create_bot,make_bot"], "no action 'make_bot'"),
        (["--account", "a", "--base-url", "http://127.0.0.1:9"], "--account is for the embedded"),
    ],
)
def test_stdio_bad_options_fail_before_serving(home: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [OBK, "mcp", *args],
        env={"OBK_HOME": str(home), "PATH": ""},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 1
    assert message in proc.stderr
    assert proc.stdout == ""


def test_stdio_account_option_scopes_every_call(home: Path) -> None:
    async def main() -> None:
        async with stdio_client(home, "--account", "alice") as alice:
            bot = ok(await alice.call_tool("create_bot", {"name": "Alice's"}))["id"]
        async with stdio_client(home, "--account", "bob") as bob:
            error(await bob.call_tool("fetch_bot", {"botId": bot}), "not_found")
            assert ok(await bob.call_tool("list_bots", {}))["items"] == []
        async with stdio_client(home) as local:
            error(await local.call_tool("fetch_bot", {"botId": bot}), "not_found")
        async with stdio_client(home, "--account", "alice") as alice:
            assert ok(await alice.call_tool("fetch_bot", {"botId": bot}))["name"] == "Alice's"

    anyio.run(main)


def test_stdio_uploads_and_downloads_local_paths(home: Path, tmp_path: Path) -> None:
    source = tmp_path / "hours.txt"
    source.write_text("Open 9 to 5.\n")
    out_dir = tmp_path / "downloads"
    out_dir.mkdir()

    async def main() -> None:
        async with stdio_client(home) as client:
            file_id = ok(await client.call_tool("create_file", {"name": "hours.txt"}))["id"]
            up = ok(await client.call_tool("upload_file", {"fileId": file_id, "path": str(source)}))
            assert up["id"] == file_id
            down = ok(
                await client.call_tool("download_file", {"fileId": file_id, "path": str(out_dir)})
            )
            assert down["size"] == len("Open 9 to 5.\n")
            assert Path(down["path"]).read_text() == "Open 9 to 5.\n"
            assert Path(down["path"]).parent == out_dir

    anyio.run(main)
