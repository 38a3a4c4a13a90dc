"""openbotkit: a self-hostable, ChatBotKit-compatible conversational-AI platform.

The Python API is the same engine the CLI and the server use::

    from openbotkit import Engine, Settings

    engine = Engine(Settings.from_env())
    bot = engine.execute("create_bot", {"name": "Helper"})
    engine.execute("fetch_bot", {"botId": bot["id"]})
"""

from openbotkit.actions import REGISTRY, Action, Effect
from openbotkit.engine import Engine
from openbotkit.errors import ObkError
from openbotkit.settings import Settings

__all__ = ["REGISTRY", "Action", "Effect", "Engine", "ObkError", "Settings"]
