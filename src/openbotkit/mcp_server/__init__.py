"""Every registered action as a Model Context Protocol tool (stdio: `obk mcp`; HTTP: `/mcp`)."""

from openbotkit.mcp_server.server import ActionRunner, CallsInFlight, RunnerFor, build_server
from openbotkit.mcp_server.tools import ToolSelection, tool_for, toolsets

__all__ = [
    "ActionRunner",
    "CallsInFlight",
    "RunnerFor",
    "ToolSelection",
    "build_server",
    "tool_for",
    "toolsets",
]
