"""Every registered action as a Model Context Protocol tool (stdio: `obk mcp`; HTTP: `/mcp`)."""

from openbotkit.mcp_server.server import ActionRunner, RunnerFor, build_server
from openbotkit.mcp_server.tools import ToolSelection, tool_for, toolsets

__all__ = ["ActionRunner", "RunnerFor", "ToolSelection", "build_server", "tool_for", "toolsets"]
