"""The action registry. Importing this declares nothing yet: `REGISTRY` imports the module that
declares an action when the action is first asked for, and all of them when looped over."""

from openbotkit.actions.registry import REGISTRY, Action, Effect, Registry, action

__all__ = ["REGISTRY", "Action", "Effect", "Registry", "action"]
