"""The action registry and the modules that declare actions (importing this registers them all)."""

from openbotkit.actions import bots, datasets  # noqa: F401
from openbotkit.actions.registry import REGISTRY, Action, Effect, Registry, action

__all__ = ["REGISTRY", "Action", "Effect", "Registry", "action"]
