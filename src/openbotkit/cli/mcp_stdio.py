"""`obk mcp`: every action as an MCP tool on stdio, for an MCP client's server configuration.

It runs actions exactly as `obk connector run` does (the same `Runner`): on the embedded engine
as the local account (or `--account`), or on a ChatBotKit-compatible server with `--base-url`
and CHATBOTKIT_API_SECRET. The client runs on this machine, so local `path` fields are offered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from openbotkit.actions import REGISTRY
from openbotkit.cli.connector import Runner

if TYPE_CHECKING:
    from openbotkit.mcp_server import ActionRunner
    from openbotkit.mcp_server.server import Context


@click.command("mcp")
@click.option("--account", help="Embedded engine: act as this account (default: local).")
@click.option("--base-url", help="A ChatBotKit-compatible server (or CHATBOTKIT_BASE_URL).")
@click.option("--read-only", is_flag=True, help="Offer and run only the tools that read.")
@click.option(
    "--tools",
    multiple=True,
    metavar="NAME,...",
    help="Offer only these tools (action names; repeatable).",
)
@click.option(
    "--toolset",
    multiple=True,
    metavar="NAME,...",
    help="Offer only these resources' tools: bots, conversations, datasets, files, usage.",
)
def mcp(
    account: str | None,
    base_url: str | None,
    read_only: bool,
    tools: tuple[str, ...],
    toolset: tuple[str, ...],
) -> None:
    """Serve the connector's actions as MCP tools on stdin/stdout."""
    # Imported here: `obk --help` loads this module, and the SDK brings starlette and httpx.
    import anyio
    from mcp.server.stdio import stdio_server

    from openbotkit.mcp_server import ToolSelection, build_server

    runner = Runner(base_url, account)
    selection = ToolSelection.parse(REGISTRY, read_only=read_only, tools=tools, toolset=toolset)
    if not runner.base_url:
        runner.account_id  # noqa: B018 - open the store and the account before serving

    async def runner_for(_ctx: Context) -> ActionRunner:
        return runner

    server = build_server(runner_for, local=True, selection=selection)

    async def serve() -> None:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())

    anyio.run(serve)
