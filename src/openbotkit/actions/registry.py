"""The action registry: each action declared once, every surface derived from it.

`@action(name, effect, "METHOD /path")` records the handler with its input and output types (read
from the annotations) and the first docstring line. The CLI, the REST routes, the JSON Schemas,
the HTTP client and MCP tools all loop over `REGISTRY`; none has per-action code.

`REGISTRY` imports the modules that declare actions on demand: `get(name)` imports the one module
that declares `name` (a connector call pays for one action, not all of them), and looping over it
imports them all. Which module declares which action is read off the modules themselves by
`scripts/gen_docs.py` into `actions/index.py` (a test checks it is current); nothing is listed
by hand.
"""

from __future__ import annotations

import importlib
import re
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from openbotkit.access import Effect as Effect  # re-exported: actions declare effects here
from openbotkit.actions.base import configured_fields, local_only_fields
from openbotkit.actions.index import MODULES
from openbotkit.errors import InvalidInput, Problem, UnknownAction

EffectRule = Effect | Callable[[Any], Effect]
Handler = Callable[[Any, Any], Any]
_PATH_PARAM = re.compile(r"{(\w+)}")
# Input fields naming a resource an API key can be limited to (directly, or through the bot or
# dataset that owns it: services/keys.py). Read off every action's input; no per-action lists.
RESOURCE_FIELDS = {
    "bot_id": "bot",
    "dataset_id": "dataset",
    "conversation_id": "conversation",
    "file_id": "file",
    # Account-level resources: no key limited to bots or datasets reaches them.
    "skillset_id": "skillset",
    "ability_id": "ability",
    "secret_id": "secret",
    "linked_secret_id": "secret",
    # An account-wide resource: no key limited to bots or datasets reaches it (services/keys.py
    # knows no owner for it), so such a key cannot re-point an integration at its bot.
    "integration_id": "integration",
}
# `/bot/{botId}/update`: the parameter right before the verb names what the action changes.
_TARGET = re.compile(r"{(\w+)Id}/[\w-]+$")
# `/bot/create`, `/integration/slack/create`: a new top-level resource (not a record or message
# inside a parent, whose path names the parent's id).
_CREATES = re.compile(r"^/(\w+)(?:/[a-z]+)?/create$")


@dataclass(frozen=True)
class Action:
    """One declared action. `path` is relative to the API prefix (`/api/v1`, `/v1`)."""

    name: str
    effect_rule: EffectRule
    method: str
    path: str
    input: type[BaseModel]
    output: type[BaseModel]
    handler: Handler
    description: str
    extensions: dict[str, Any] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    @property
    def effect(self) -> Effect:
        """The declared effect; for input-dependent rules, the strongest it can be (declared
        as `strongest_effect`, else destructive)."""
        if isinstance(self.effect_rule, Effect):
            return self.effect_rule
        strongest: Effect = self.extensions.get("strongest_effect", Effect.DESTRUCTIVE)
        return strongest

    def input_schema(self) -> dict[str, Any]:
        """The input's JSON Schema (camelCase keys), as `obk connector schema` prints it."""
        return self.input.model_json_schema(by_alias=True)

    def output_schema(self) -> dict[str, Any]:
        """The output's JSON Schema: the JSON a run returns (the connector's `data`)."""
        return self.output.model_json_schema(by_alias=True, mode="serialization")

    @property
    def idempotent(self) -> bool:
        """Running it again with the same input changes nothing more: reads, deletes, and the
        writes declared `idempotent=True` (updates, which set fields to given values)."""
        return self.effect is not Effect.WRITE or bool(self.extensions.get("idempotent"))

    @property
    def open_world(self) -> bool:
        """It may reach outside this installation (a URL fetch, a remote model): declared
        `open_world=True` where the action can do so."""
        return bool(self.extensions.get("open_world"))

    @property
    def resource(self) -> str:
        """The ChatBotKit resource it belongs to: its path's first segment (`bot`, `dataset`,
        ...). A dataset's records, files and search are `dataset`, a conversation's messages
        and completions `conversation`."""
        return self.path.split("/")[1]

    @property
    def local_fields(self) -> frozenset[str]:
        """Input fields (by alias) naming files on the machine that runs the action: honoured
        only where that machine is the caller's own (the CLI, `obk mcp` on stdio)."""
        return local_only_fields(self.input)

    def refuse_local_fields(self, data: Any, allowed: Callable[[str], bool] | None = None) -> None:
        """Refuse local-only fields given by a caller on another machine: `data` is raw input (a
        dict) or a parsed one; a value for which `allowed` says True is let through."""
        if not self.local_fields:
            return
        if isinstance(data, BaseModel):
            given_values = {
                (field.alias or name): getattr(data, name)
                for name, field in type(data).model_fields.items()
                if (field.alias or name) in self.local_fields
            }
        elif isinstance(data, dict):
            given_values = {k: data[k] for k in self.local_fields & data.keys()}
        else:
            given_values = {}
        given = sorted(
            name
            for name, value in given_values.items()
            if value is not None and not (allowed is not None and allowed(str(value)))
        )
        if given:
            names = ", ".join(f"`{name}`" for name in given)
            raise InvalidInput(
                f"{names} names a file on the machine running the action: only the local"
                " connector (obk connector, obk mcp on stdio) may use it, and in Python an"
                " Engine(settings, local_paths=True); send the content instead",
                details=[
                    Problem(f"/{name}", "local_only", "not accepted over the network")
                    for name in given
                ],
            )

    def effect_for(self, inp: BaseModel) -> Effect:
        rule = self.effect_rule
        return rule if isinstance(rule, Effect) else rule(inp)

    @property
    def target(self) -> str | None:
        """The kind of resource the action reads or changes itself (`/bot/{botId}/update`:
        bot), or None when it lists or creates one (`/bot/create`, `.../record/create`)."""
        found = _TARGET.search(self.path)
        return found[1] if found else None

    @property
    def creates(self) -> str | None:
        """The kind of top-level resource the action creates (`/bot/create`: bot,
        `/integration/slack/create`: integration), or None."""
        found = _CREATES.match(self.path)
        return found[1] if found else None

    def resources(self, inp: BaseModel) -> list[tuple[str, str]]:
        """The resources an input names: (kind, id or @alias) for each id field it gives."""
        named = []
        for name, kind in RESOURCE_FIELDS.items():
            value = getattr(inp, name, None)
            if isinstance(value, str) and value:
                named.append((kind, value))
        return named

    def configures(self, inp: BaseModel) -> list[str]:
        """The bot configuration fields (model, backstory, datasetId, ...) an input gives."""
        return configured_fields(inp)

    @property
    def in_session(self) -> bool:
        """A conversation session token may call it: declared `session=True` on the actions
        that read a conversation and its messages, add to it and complete it."""
        return bool(self.extensions.get("session"))

    @property
    def starts_session(self) -> bool:
        """It opens a conversation session (declared `starts_session=True`)."""
        return bool(self.extensions.get("starts_session"))

    def parse_input(self, data: Any) -> BaseModel:
        """Validate raw JSON-like input; errors name each field (JSON pointer) and rule."""
        if not isinstance(data, dict):
            raise InvalidInput(
                "input must be a JSON object",
                details=[Problem("", "type", f"expected an object, got {type(data).__name__}")],
            )
        nul = nul_problems(data)
        if nul:
            summary = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in nul)
            raise InvalidInput(f"invalid input: {summary}", details=nul)
        try:
            return self.input.model_validate(data)
        except ValidationError as exc:
            raise invalid_input_from(exc) from None

    def dump_output(self, out: BaseModel) -> dict[str, Any]:
        return out.model_dump(mode="json", by_alias=True, exclude_none=True)


NUL = "\x00"


def nul_problems(value: Any, pointer: str = "") -> list[Problem]:
    """Every string in `value` (object keys included) holding the NUL character, by JSON pointer.

    PostgreSQL stores no NUL in text or jsonb (the write would fail half-way, a 500), and SQLite
    would keep what PostgreSQL cannot: an input holding one is refused alike on either, naming
    each place, before anything runs."""
    problems: list[Problem] = []
    if isinstance(value, str) and NUL in value:
        problems.append(Problem(pointer, "nul_character", "must not contain the NUL character"))
    if isinstance(value, dict):
        for key, item in value.items():
            child = f"{pointer}/{key}"
            if NUL in str(key):
                problems.append(
                    Problem(pointer, "nul_character", "keys must not contain the NUL character")
                )
            problems += nul_problems(item, child)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            problems += nul_problems(item, f"{pointer}/{i}")
    return problems


def invalid_input_from(exc: ValidationError) -> InvalidInput:
    problems = []
    for err in exc.errors(include_url=False):
        pointer = "".join(f"/{part}" for part in err["loc"])
        problems.append(Problem(pointer, err["type"], err["msg"]))
    summary = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems)
    return InvalidInput(f"invalid input: {summary}", details=problems)


class Registry:
    """Actions by name, in declaration order (the index's order, when it has one).

    `index` maps each action's name to the module that declares it: such a registry imports a
    module when one of its actions is first asked for, and every module when it is looped over.
    A registry without an index holds what was added to it."""

    def __init__(self, index: Mapping[str, str] | None = None) -> None:
        self._actions: dict[str, Action] = {}
        self._index: dict[str, str] = dict(index or {})
        self._order = {name: i for i, name in enumerate(self._index)}
        self._complete = not self._index

    def add(self, act: Action) -> None:
        if act.name in self._actions:
            raise ValueError(f"action {act.name!r} declared twice")
        self._actions[act.name] = act

    def get(self, name: str) -> Action:
        act = self._actions.get(name)
        if act is None and name in self._index:
            importlib.import_module(self._index[name])
            act = self._actions.get(name)
        if act is None:
            known = ", ".join(sorted(self.names()))
            raise UnknownAction(f"no action {name!r}; known actions: {known}")
        return act

    def names(self) -> list[str]:
        """Every action's name, without importing the modules that declare them."""
        return [*self._index, *(n for n in self._actions if n not in self._order)]

    def load_all(self) -> None:
        """Import every module the index names (each once, in the index's order)."""
        if self._complete:
            return
        for module in dict.fromkeys(self._index.values()):
            importlib.import_module(module)
        self._complete = True

    def declared(self) -> list[Action]:
        """The actions added so far, in the order their modules declared them."""
        return list(self._actions.values())

    def __iter__(self) -> Iterator[Action]:
        self.load_all()
        last = len(self._order)
        ordered = sorted(self._actions.values(), key=lambda a: self._order.get(a.name, last))
        return iter(ordered)

    def __len__(self) -> int:
        self.load_all()
        return len(self._actions)

    def __contains__(self, name: object) -> bool:
        return name in self._actions or name in self._index


REGISTRY = Registry(MODULES)

F = TypeVar("F", bound=Callable[..., Any])


def action(
    name: str, effect: EffectRule, route: str, *, registry: Registry = REGISTRY, **extensions: Any
) -> Callable[[F], F]:
    """Declare a handler `(ctx, inp: XInput) -> XOutput` as the action `name` at `route`."""
    method, path = route.split(" ", 1)

    def register(fn: F) -> F:
        hints = typing.get_type_hints(fn)
        params = [p for p in hints if p != "return"]
        inp_type, out_type = hints[params[-1]], hints["return"]
        doc = (fn.__doc__ or "").strip().splitlines()
        registry.add(
            Action(
                name=name,
                effect_rule=effect,
                method=method,
                path=path,
                input=inp_type,
                output=out_type,
                handler=fn,
                description=doc[0] if doc else name,
                extensions=extensions,
            )
        )
        return fn

    return register
