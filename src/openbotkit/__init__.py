"""openbotkit: a self-hostable, ChatBotKit-compatible conversational-AI platform.

The Python API is the same engine the CLI and the server use::

    from openbotkit import Engine, Settings

    engine = Engine(Settings.from_env())
    bot = engine.execute("create_bot", {"name": "Helper"})
    engine.execute("fetch_bot", {"botId": bot["id"]})

The names below are imported on first use (PEP 562), so `import openbotkit.<anything>` (the
`obk` command among them) does not pay for the whole engine before it needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openbotkit.actions import REGISTRY, Action, Effect
    from openbotkit.engine import Engine
    from openbotkit.errors import ObkError
    from openbotkit.settings import Settings

__all__ = ["REGISTRY", "Action", "Effect", "Engine", "ObkError", "Settings"]

_HOMES = {
    "REGISTRY": "openbotkit.actions",
    "Action": "openbotkit.actions",
    "Effect": "openbotkit.actions",
    "Engine": "openbotkit.engine",
    "ObkError": "openbotkit.errors",
    "Settings": "openbotkit.settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'openbotkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
