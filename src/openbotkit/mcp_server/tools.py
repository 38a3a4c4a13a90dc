"""MCP tools derived from the action registry: one tool per action, nothing declared again.

A tool is named as its action, described by its purpose line, takes the action's input JSON
Schema and returns its output JSON Schema. The four annotations come from the action's effect
and its declared `idempotent` / `open_world` attributes. Which actions are offered is a
`ToolSelection` (read-only, names, toolsets): the options MCP users ask for to stay under their
clients' tool limits, enforced when a tool is called, not only when tools are listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from openbotkit.actions import Action, Effect, Registry
from openbotkit.errors import InvalidInput, NotAuthorized, Problem, UnknownAction


def toolsets(registry: Registry) -> list[str]:
    """The toolset names: the registry's resources (`bot`, `conversation`, `dataset`, ...)."""
    return sorted({act.resource for act in registry})


def annotations_for(act: Action) -> types.ToolAnnotations:
    """All four hints set explicitly, from the action's declaration."""
    effect = act.effect
    return types.ToolAnnotations(
        read_only_hint=effect is Effect.READ,
        destructive_hint=effect is Effect.DESTRUCTIVE,
        idempotent_hint=act.idempotent,
        open_world_hint=act.open_world,
    )


def _without(schema: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """`schema` without the given top-level properties (and their `required` entries)."""
    if not fields:
        return schema
    trimmed = dict(schema)
    trimmed["properties"] = {
        k: v for k, v in schema.get("properties", {}).items() if k not in fields
    }
    if "required" in schema:
        trimmed["required"] = [k for k in schema["required"] if k not in fields]
    return trimmed


def tool_for(act: Action, *, local: bool) -> types.Tool:
    """The MCP tool of one action. Without `local` (a caller on another machine), the fields
    naming files on this machine are left out of the schema (and refused when sent)."""
    input_schema = act.input_schema()
    if not local:
        input_schema = _without(input_schema, act.local_fields)
    return types.Tool(
        name=act.name,
        title=act.name.replace("_", " ").capitalize(),
        description=act.description,
        input_schema=input_schema,
        output_schema=act.output_schema(),
        annotations=annotations_for(act),
    )


def _split(values: Iterable[str]) -> list[str]:
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


@dataclass(frozen=True)
class ToolSelection:
    """Which actions a server offers: `--read-only`, `--tools NAME,...`, `--toolset NAME,...`.

    Names and toolsets add up (a tool is offered when either selects it; neither given means
    all); read-only then keeps only the reads.
    """

    read_only: bool = False
    names: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()

    @classmethod
    def parse(
        cls,
        registry: Registry,
        *,
        read_only: bool = False,
        tools: Iterable[str] = (),
        toolset: Iterable[str] = (),
    ) -> ToolSelection:
        """From command-line values (comma-separated, repeatable); unknown names are errors
        that list the known ones. A toolset may be named in the plural (`bots`)."""
        names = _split(tools)
        for name in names:
            registry.get(name)  # raises unknown_action, listing the known actions
        known = toolsets(registry)
        sets = []
        for given in _split(toolset):
            name = given if given in known else given.removesuffix("s")
            if name not in known:
                raise InvalidInput(
                    f"no toolset {given!r}; toolsets: {', '.join(known)}",
                    details=[Problem("/toolset", "enum", f"one of {', '.join(known)}")],
                )
            sets.append(name)
        return cls(read_only, frozenset(names), frozenset(sets))

    def offers(self, act: Action) -> bool:
        if self.read_only and act.effect is not Effect.READ:
            return False
        if not self.names and not self.sets:
            return True
        return act.name in self.names or act.resource in self.sets

    def actions(self, registry: Registry) -> list[Action]:
        return [act for act in registry if self.offers(act)]

    def check(self, registry: Registry, name: str) -> Action:
        """The action a tool call names, or the error saying why this server does not run it."""
        act = registry.get(name)  # unknown_action for a name that is no action at all
        if self.read_only and act.effect is not Effect.READ:
            raise NotAuthorized(
                f"{name} changes data and this MCP server is read-only (--read-only)"
            )
        if not self.offers(act):
            raise UnknownAction(
                f"no tool {name!r} on this MCP server (not selected by --tools/--toolset)"
            )
        return act
