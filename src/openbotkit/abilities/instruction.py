"""ChatBotKit's ability instruction format, parsed and checked without running anything.

An instruction is text that may hold one fenced action block:

    ```fetch
    method: GET
    url: https://api.example.com/orders/$[orderId! euc|the order number]
    headers:
      Authorization: ${SECRET_DEFAULT}
    ```

The fence's info string names the action (`fetch`, `search` or `dataset/search`,
`mcp/install`, `bot` or `bot/ask`), optionally followed by `/key=value` options
(`dataset/search/id=...`). The body is YAML (a mapping, or for some actions a single value).
Inside it, `$[name! flags|description]` is a parameter the model fills (`!` required, `?` or no
mark optional; flags `euc` URL-encode, `ys` YAML string, `j` JSON, `enum<a,b>`), and
`${SECRET_DEFAULT}` / `${SECRET_<NAME>}` stand for the linked secret and for the account's secret
with alias <name> (upper case, `-` as `_`). `((name|...))` is a catalogue template field meant to
be replaced by a value before the ability is saved; one left in is an error.

`parse` is pure: it returns an `Instruction` (the action, its parameters, a JSON Schema of them
and the secrets referenced) or raises InvalidInput with a Problem at `/instruction` whose message
names the line (1-based, counted in the whole instruction). Whether referenced secrets, datasets
and bots exist is the service's check (services/abilities.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from openbotkit.errors import InvalidInput, Problem

# Action block names -> the action type they run; ChatBotKit's longer names are accepted too.
ACTION_TYPES: Mapping[str, str] = {
    "fetch": "fetch",
    "search": "search",
    "dataset/search": "search",
    "mcp/install": "mcp/install",
    "bot": "bot",
    "bot/ask": "bot",
}
# Header options (`/key=value` in the fence's info string) each action type takes.
HEADER_OPTIONS: Mapping[str, frozenset[str]] = {
    "fetch": frozenset(),
    "search": frozenset({"id"}),
    "mcp/install": frozenset(),
    "bot": frozenset({"id"}),
}
# Keys of a mapping body, per action type; the first of each tuple is required.
BODY_KEYS: Mapping[str, frozenset[str]] = {
    "fetch": frozenset({"method", "url", "query", "headers", "body", "options"}),
    "search": frozenset({"query", "datasetId"}),
    "mcp/install": frozenset({"url", "headers", "prefix"}),
    "bot": frozenset({"prompt", "botId", "timeout"}),
}
# What a body that is a single value (not a mapping) means.
SCALAR_BODY: Mapping[str, str] = {
    "fetch": "url",
    "search": "query",
    "mcp/install": "url",
    "bot": "prompt",
}
REQUIRED_KEY: Mapping[str, str] = {
    "fetch": "url",
    "search": "query",
    "mcp/install": "url",
    "bot": "prompt",
}
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})
FLAGS = frozenset({"euc", "ys", "j"})

_FENCE = re.compile(r"^\s*```(?P<info>[^`]*)$")
_PARAM = re.compile(r"\$\[(?P<inner>[^\]\n]*)\]")
_PARAM_OPEN = re.compile(r"\$\[(?![^\]\n]*\])")
_PARAM_HEAD = re.compile(r"\s*(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<mark>[!?])?(?P<flags>.*)")
_FLAG = re.compile(r"enum<(?P<enum>[^>]*)>|(?P<flag>\S+)")
_SECRET = re.compile(r"\$\{(?P<name>SECRET[^}\n]*)\}")
_SECRET_NAME = re.compile(r"SECRET_(?P<name>[A-Z0-9][A-Z0-9_]*)")
_TEMPLATE_FIELD = re.compile(r"\(\((?P<inner>[^)\n]*)\)\)")
_TOKEN = re.compile(r"obktoken(\d+)x")


@dataclass(frozen=True)
class Parameter:
    """A value the model fills: `$[name! flags|description]`."""

    name: str
    required: bool
    flags: tuple[str, ...] = ()
    description: str | None = None
    enum: tuple[str, ...] | None = None
    line: int = 0

    def json_schema(self) -> dict[str, Any]:
        # `j`: the value is any JSON value, written into the text as JSON; otherwise text.
        schema: dict[str, Any] = {} if "j" in self.flags else {"type": "string"}
        if self.description:
            schema["description"] = self.description
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        return schema


@dataclass(frozen=True)
class SecretRef:
    """`${SECRET_DEFAULT}` (name "DEFAULT": the ability's linked secret) or `${SECRET_<NAME>}`."""

    name: str
    line: int

    @property
    def is_default(self) -> bool:
        return self.name == "DEFAULT"

    @property
    def alias(self) -> str:
        """The alias of the account's secret a named reference means (`GITHUB_ORG`:
        `github-org` or `github_org`, both tried by the service)."""
        return self.name.lower()


@dataclass(frozen=True)
class Action:
    """The action block: its type, the options of its header and its body as written, with
    parameters and secret references left in the strings for the code that runs it."""

    type: str
    name: str
    options: dict[str, str]
    body: dict[str, Any]
    line: int

    @property
    def target_id(self) -> str | None:
        """The dataset a search reads or the bot a `bot` block asks, when the block names one
        (header `id=`, else `datasetId` / `botId`); it may be a parameter."""
        key = {"search": "datasetId", "bot": "botId"}.get(self.type)
        if key is None:
            return None
        value = self.options.get("id") or self.body.get(key)
        return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class Instruction:
    text: str
    action: Action | None
    parameters: tuple[Parameter, ...] = ()
    secrets: tuple[SecretRef, ...] = field(default=())

    def json_schema(self) -> dict[str, Any]:
        """The parameters as a JSON Schema object, as a tool declares its arguments."""
        return {
            "type": "object",
            "properties": {p.name: p.json_schema() for p in self.parameters},
            "required": [p.name for p in self.parameters if p.required],
            "additionalProperties": False,
        }


def _error(line: int, message: str, rule: str = "instruction") -> InvalidInput:
    text = f"instruction line {line}: {message}"
    return InvalidInput(text, details=[Problem("/instruction", rule, text)])


def parse(text: str) -> Instruction:
    """Parse an ability's instruction; raise InvalidInput naming the line of the first fault."""
    lines = text.splitlines()
    blocks: list[tuple[int, str, int]] = []  # (opening line index, info, closing line index)
    opened: tuple[int, str] | None = None
    for index, line in enumerate(lines):
        fence = _FENCE.match(line)
        if fence is None:
            continue
        info = fence["info"].strip()
        if opened is None:
            opened = (index, info)
        elif not info:
            blocks.append((opened[0], opened[1], index))
            opened = None
        else:
            raise _error(
                index + 1,
                f"a block opens here while the block of line {opened[0] + 1} is still open;"
                " close it with a line of three backticks",
            )
    if opened is not None:
        raise _error(opened[0] + 1, "the block opened here is never closed (```)")
    actions = [b for b in blocks if b[1]]
    if not actions:
        return Instruction(text, None)
    if len(actions) > 1:
        raise _error(
            actions[1][0] + 1,
            f"an ability holds one action block; another starts on line {actions[0][0] + 1}",
        )
    start, info, end = actions[0]
    kind, options = _header(info, start + 1)
    body_lines = lines[start + 1 : end]
    parameters, secrets, tokens, masked = _scan(body_lines, start + 2)
    body = _load_body(kind, "\n".join(masked), start + 2, tokens)
    action = Action(kind, info, options, body, start + 1)
    _check_target(action)
    return Instruction(text, action, tuple(parameters), tuple(secrets))


def _header(info: str, line: int) -> tuple[str, dict[str, str]]:
    """`dataset/search/id=abc` -> ("search", {"id": "abc"})."""
    field_found = _TEMPLATE_FIELD.search(info)
    if field_found:
        raise _error(
            line,
            f"the template field (({field_found['inner']})) is not filled in: replace it with"
            " a value",
            "template_field",
        )
    parts = info.split("/")
    names = [p for p in parts if "=" not in p]
    options = dict(p.split("=", 1) for p in parts if "=" in p)
    name = "/".join(names)
    kind = ACTION_TYPES.get(name)
    if kind is None:
        known = ", ".join(ACTION_TYPES)
        raise _error(line, f"unknown action block {name!r}; supported: {known}", "action")
    unknown = sorted(set(options) - HEADER_OPTIONS[kind])
    if unknown:
        allowed = ", ".join(sorted(HEADER_OPTIONS[kind])) or "none"
        raise _error(
            line, f"{name} does not take the option {unknown[0]!r} (options: {allowed})", "action"
        )
    return kind, options


def _scan(
    body: list[str], first_line: int
) -> tuple[list[Parameter], list[SecretRef], dict[str, str], list[str]]:
    """Find parameters and secret references, line by line; return them, and the body with each
    replaced by a plain token (so YAML never reads a description's `:` or `#`)."""
    params: dict[str, Parameter] = {}
    secrets: list[SecretRef] = []
    tokens: dict[str, str] = {}
    masked: list[str] = []
    for offset, line in enumerate(body):
        number = first_line + offset
        field_found = _TEMPLATE_FIELD.search(line)
        if field_found:
            raise _error(
                number,
                f"the template field (({field_found['inner']})) is not filled in: replace it"
                " with a value (or with $[...] for a value the model gives)",
                "template_field",
            )
        unclosed = _PARAM_OPEN.search(line)
        if unclosed:
            raise _error(number, "a parameter opened with $[ is not closed with ]", "parameter")

        def mask(found: re.Match[str]) -> str:
            token = f"obktoken{len(tokens)}x"
            tokens[token] = found[0]
            return token

        for found in _PARAM.finditer(line):
            param = _parameter(found["inner"], number)
            seen = params.get(param.name)
            if seen is not None and (seen.flags, seen.enum) != (param.flags, param.enum):
                raise _error(
                    number,
                    f"parameter {param.name!r} is used with other flags than on line {seen.line}",
                    "parameter",
                )
            if seen is None:
                params[param.name] = param
            elif param.required and not seen.required:
                params[param.name] = Parameter(
                    seen.name, True, seen.flags, seen.description, seen.enum, seen.line
                )
        for found in _SECRET.finditer(line):
            name = _SECRET_NAME.fullmatch(found["name"])
            if name is None:
                raise _error(
                    number,
                    f"${{{found['name']}}} is not a secret reference: write ${{SECRET_DEFAULT}}"
                    " or ${SECRET_<NAME>} (upper case letters, digits and _)",
                    "secret",
                )
            secrets.append(SecretRef(name["name"], number))
        masked.append(_SECRET.sub(mask, _PARAM.sub(mask, line)))
    return list(params.values()), secrets, tokens, masked


def _parameter(inner: str, line: int) -> Parameter:
    head, bar, description = inner.partition("|")
    found = _PARAM_HEAD.fullmatch(head)
    if found is None:
        raise _error(
            line,
            f"$[{inner}] has no parameter name: write $[name! flags|description]",
            "parameter",
        )
    flags: list[str] = []
    enum: tuple[str, ...] | None = None
    for flag in _FLAG.finditer(found["flags"]):
        if flag["enum"] is not None:
            values = tuple(v.strip() for v in flag["enum"].split(",") if v.strip())
            if not values:
                raise _error(line, "enum<...> lists no values", "parameter")
            enum = values
        elif flag["flag"] in FLAGS:
            flags.append(flag["flag"])
        else:
            known = ", ".join([*sorted(FLAGS), "enum<a,b>"])
            raise _error(
                line,
                f"parameter {found['name']!r} has an unknown flag {flag['flag']!r} ({known})",
                "parameter",
            )
    return Parameter(
        name=found["name"],
        required=found["mark"] == "!",
        flags=tuple(flags),
        description=description.strip() or None if bar else None,
        enum=enum,
        line=line,
    )


def _load_body(kind: str, masked: str, first_line: int, tokens: dict[str, str]) -> dict[str, Any]:
    """The block's YAML as a mapping of the action's keys, the tokens put back in its strings."""
    try:
        node = yaml.compose(masked, Loader=yaml.SafeLoader)
        data = yaml.safe_load(masked)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = first_line + (mark.line if mark is not None else 0)
        raise _error(line, f"not valid YAML: {exc.problem or exc.context}", "yaml") from None
    except yaml.YAMLError as exc:
        raise _error(first_line, f"not valid YAML: {exc}", "yaml") from None
    if data is None:
        raise _error(first_line - 1, f"the {kind} block is empty", "action")
    if not isinstance(data, dict):
        if isinstance(data, list):
            raise _error(first_line, f"the {kind} block must be a mapping of keys", "action")
        data = {SCALAR_BODY[kind]: data}
        key_lines = {SCALAR_BODY[kind]: first_line}
    else:
        assert isinstance(node, yaml.MappingNode)
        key_lines = {str(key.value): first_line + key.start_mark.line for key, _ in node.value}
    restored: dict[str, Any] = _restore(data, tokens)
    unknown = [k for k in restored if k not in BODY_KEYS[kind]]
    if unknown:
        key = unknown[0]
        allowed = ", ".join(sorted(BODY_KEYS[kind]))
        raise _error(key_lines.get(str(key), first_line), f"{kind} has no key {key!r} ({allowed})")
    required = REQUIRED_KEY[kind]
    if restored.get(required) in (None, ""):
        raise _error(first_line - 1, f"the {kind} block needs {required!r}", "required")
    _check_types(kind, restored, key_lines, first_line)
    return restored


def _check_target(action: Action) -> None:
    """A dataset search names its dataset (`dataset/search/id=...` or `datasetId:`)."""
    if action.type == "search" and not action.target_id:
        raise _error(
            action.line,
            "a search names its dataset: `dataset/search/id=<datasetId>` or a datasetId key",
            "required",
        )


def _restore(value: Any, tokens: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _TOKEN.sub(lambda m: tokens.get(m[0], m[0]), value)
    if isinstance(value, dict):
        return {_restore(k, tokens): _restore(v, tokens) for k, v in value.items()}
    if isinstance(value, list):
        return [_restore(v, tokens) for v in value]
    return value


def _check_types(kind: str, body: dict[str, Any], key_lines: dict[str, int], first: int) -> None:
    def line_of(key: str) -> int:
        return key_lines.get(key, first)

    for key in ("url", "query", "prompt", "method", "datasetId", "botId", "prefix"):
        value = body.get(key)
        if kind == "fetch" and key == "query":
            continue
        if value is not None and not isinstance(value, str):
            raise _error(line_of(key), f"{key!r} must be text", "type")
    for key in ("headers", "options") + (("query",) if kind == "fetch" else ()):
        value = body.get(key)
        if value is not None and not isinstance(value, dict):
            raise _error(line_of(key), f"{key!r} must be a mapping of names to values", "type")
        for name, item in (value or {}).items():
            if isinstance(item, (dict, list)):
                raise _error(line_of(key), f"{key}.{name} must be a single value", "type")
    method = body.get("method")
    if isinstance(method, str) and not _PARAM.search(method) and method.upper() not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise _error(line_of("method"), f"method {method!r} is not one of {known}", "enum")
    timeout = body.get("timeout")
    in_range = isinstance(timeout, int) and 0 < timeout <= 300_000
    a_parameter = isinstance(timeout, str) and _PARAM.fullmatch(timeout) is not None
    if timeout is not None and not (in_range or a_parameter):
        raise _error(line_of("timeout"), "timeout must be milliseconds, 1..300000", "range")


def format_secret(kind: str, value: str) -> str:
    """What `${SECRET_DEFAULT}` becomes for a secret of type `kind`, as ChatBotKit formats it:
    bearer `Bearer <value>`, basic `Basic <base64 of user:password>`, plain and template the
    value as stored."""
    if kind == "bearer":
        return f"Bearer {value}"
    if kind == "basic":
        import base64

        return "Basic " + base64.b64encode(value.encode()).decode()
    return value
