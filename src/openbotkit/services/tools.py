"""Abilities as tools: what the model is offered (`tools_for`) and running one (`call`).

Each ability of a bot's skillsets becomes a `Tool`: a stable name (the slug of the ability's
name), its description and a JSON Schema of the instruction's `$[...]` parameters. An
`mcp/install` ability becomes one tool per tool of the remote MCP server (at most
mcp_remote.MAX_MCP_TOOLS). `call` checks the model's arguments against that schema, renders the
instruction and runs its action (services/ability_kinds.py), and always returns an `Outcome`:
a failed call is `ok=False` with the reason said plainly, never an exception, so the model can
be told and the conversation goes on.

Rendering happens on the parsed block, not on its text: a parameter's value replaces its
`$[...]` inside one string of the YAML body, so no value can add a key, a header or a line to
the request. A secret goes only where the instruction puts it, and only to the host the
instruction names (a URL whose host a parameter chooses gets no secret). Every secret value (as
stored, formatted, URL-encoded, JSON-quoted or base64-encoded) is cut out of whatever the call
returns, so an upstream that echoes the credential back does not hand it to the model, the
conversation or a log.

Transactions: `call` reads the ability and its secrets in one short read transaction and holds
none across network I/O or another bot's generation.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from openbotkit.abilities import instruction as fmt
from openbotkit.errors import ObkError
from openbotkit.services import ability_kinds as kinds
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store.tables import Ability, AbilitySecret, Skillset

if TYPE_CHECKING:
    from openbotkit.services import mcp_remote
    from openbotkit.services.ability_kinds import Asker

log = logging.getLogger("openbotkit.tools")

MAX_RESULT_CHARS = 8_000  # what the model reads of one call's result
MAX_ERROR_CHARS = 1_000
REDACTED = "[redacted]"

_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True)
class Tool:
    """One thing the model may call. `ability_id` None: a client-side function (a request's
    `functions`), whose call goes back to the client instead of running here."""

    name: str
    description: str
    parameters: dict[str, Any]
    ability_id: str | None


@dataclass(frozen=True)
class Outcome:
    """A call's result as the model reads it (bounded, no secret) or why it failed."""

    ok: bool
    result: str
    error: str | None
    duration_ms: int


def slug(text: str | None) -> str:
    """A tool name from an ability's name: `Lookup order` -> `lookup_order` (1..64 of
    [A-Za-z0-9_-])."""
    name = _NAME_UNSAFE.sub("_", (text or "").strip()).strip("_-").lower()
    return name[:64] or "ability"


def _unique(name: str, key: str, taken: set[str]) -> str:
    """`name`, or when another tool has it, `name` with a short suffix derived from `key`."""
    if name in taken:
        name = f"{name[:57]}_{hashlib.sha1(key.encode()).hexdigest()[:6]}"
    taken.add(name)
    return name


def tools_for(ctx: Ctx, skillset_ids: Sequence[str]) -> list[Tool]:
    """The abilities of these skillsets (of ctx's account, enabled), newest last, as tools.

    An `mcp/install` ability lists its server's tools here (cached for a minute, within a short
    deadline): a server that cannot be reached gives no tools, logged with the ability's id.
    """
    if not skillset_ids:
        return []
    enabled = select(Skillset.id).where(
        Skillset.account_id == ctx.account_id,
        Skillset.id.in_(list(skillset_ids)),
        Skillset.state.is_distinct_from("disabled"),
    )
    abilities = ctx.session.scalars(
        select(Ability)
        .where(
            Ability.account_id == ctx.account_id,
            Ability.skillset_id.in_(enabled),
            Ability.state.is_distinct_from("disabled"),
        )
        .order_by(Ability.created_at, Ability.id)
    ).all()
    tools: list[Tool] = []
    taken: set[str] = set()
    for ability in abilities:
        try:
            parsed = fmt.parse(ability.instruction or "")
        except ObkError:
            log.warning("ability %s has an instruction that no longer parses", ability.id)
            continue
        description = ability.description or ability.name or ""
        action = parsed.action
        if action is not None and action.type == "mcp/install":
            from openbotkit.services import mcp_remote

            secrets = _Secrets()
            try:
                secrets = _secret_values(ctx, ability, parsed)
                endpoint = _mcp_endpoint(parsed, secrets)
                remote = mcp_remote.remote_tools(
                    ctx.settings, ability.id, endpoint, mcp_remote.LIST_DEADLINE_S
                )
            except (kinds.Failed, ObkError) as exc:
                log.warning("ability %s: %s", ability.id, _redact(str(exc), secrets))
                continue
            prefix = slug(action.body.get("prefix")) + "_" if action.body.get("prefix") else ""
            for item in remote:
                name = _unique(slug(prefix + item.name), ability.id + item.name, taken)
                tools.append(
                    Tool(name, item.description or item.name, item.input_schema, ability.id)
                )
            continue
        name = _unique(slug(ability.name), ability.id, taken)
        tools.append(Tool(name, description or name, parsed.json_schema(), ability.id))
    return tools


class _Secrets:
    """The secret references of one instruction, resolved: what each `${SECRET_...}` becomes,
    and every form of every value that must never leave a call."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # reference name -> formatted value
        self.sensitive: set[str] = set()

    def add(self, ref: str, kind: str, value: str) -> None:
        formatted = fmt.format_secret(kind, value)
        self.values[ref] = formatted
        self.sensitive.update(kinds.forms_of(value) | kinds.forms_of(formatted))


def _secret_values(ctx: Ctx, ability: Ability, parsed: fmt.Instruction) -> _Secrets:
    out = _Secrets()
    for ref in parsed.secrets:
        if ref.name in out.values:
            continue
        if ref.is_default:
            cond = AbilitySecret.id == ability.linked_secret_id
        else:
            cond = AbilitySecret.alias.in_({ref.alias, ref.alias.replace("_", "-")})
        secret = ctx.session.scalars(
            select(AbilitySecret).where(AbilitySecret.account_id == ctx.account_id, cond)
        ).first()
        if secret is None or secret.value_encrypted is None:
            raise kinds.Failed(f"the secret ${{SECRET_{ref.name}}} names was deleted or is empty")
        value = ctx.runtime.vault.decrypt(secret.value_encrypted, secret_id=secret.id)
        out.add(ref.name, secret.type, value)
    return out


def _mcp_endpoint(parsed: fmt.Instruction, secrets: _Secrets) -> mcp_remote.Endpoint:
    """The MCP server's URL and headers, secrets filled in (no parameters: nothing to fill)."""
    from openbotkit.services import mcp_remote

    assert parsed.action is not None
    body = kinds.render(parsed.action.body, {}, {}, secrets.values)
    headers = {str(k): str(v) for k, v in (body.get("headers") or {}).items() if v is not None}
    kinds.check_headers(headers, parsed.action.body.get("headers") or {})
    return mcp_remote.Endpoint(str(body["url"]), headers)


def _redact(text: str, secrets: _Secrets | None) -> str:
    if secrets is None:
        return text
    for form in sorted(secrets.sensitive, key=len, reverse=True):
        text = text.replace(form, REDACTED)
    return text


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 40] + f"\n... [cut: {len(text)} characters in all]"


@dataclass
class _Loaded:
    ability_id: str
    name: str | None
    parsed: fmt.Instruction
    secrets: _Secrets
    linked_bot_id: str | None


def _load(scope: AccountScope, ability_id: str) -> _Loaded:
    with scope.transaction(write=False) as ctx:
        ability = ctx.session.scalars(
            select(Ability).where(Ability.account_id == ctx.account_id, Ability.id == ability_id)
        ).first()
        if ability is None:
            raise kinds.Failed(f"ability {ability_id} no longer exists")
        try:
            parsed = fmt.parse(ability.instruction or "")
        except ObkError as exc:
            raise kinds.Failed(f"the ability's instruction is invalid: {exc}") from None
        secrets = _secret_values(ctx, ability, parsed)
        return _Loaded(ability.id, ability.name, parsed, secrets, ability.linked_bot_id)


def call(
    scope: AccountScope,
    tool: Tool,
    arguments: dict[str, Any],
    *,
    deadline_s: float,
    ask: Asker | None = None,
) -> Outcome:
    """Check `arguments` against the tool's schema, render the ability's instruction, run it
    within `deadline_s` seconds; never raises for a failed call (module doc). `ask` asks
    another bot (completion.ask_bot, passed by the completion the call runs in)."""
    started = time.monotonic()
    deadline = started + max(deadline_s, 0.0)
    secrets: _Secrets | None = None
    ok, result, error = False, "", None
    try:
        if tool.ability_id is None:
            raise kinds.Failed(f"{tool.name} is a client-side function: the client runs it")
        kinds.validate(tool.parameters, arguments)
        loaded = _load(scope, tool.ability_id)
        secrets = loaded.secrets
        action = loaded.parsed.action
        if action is None:
            # An ability without an action block is guidance: calling it gives its text.
            ok, result = True, loaded.parsed.text
        elif action.type == "mcp/install":
            from openbotkit.services import mcp_remote

            endpoint = _mcp_endpoint(loaded.parsed, secrets)
            remote = mcp_remote.remote_tools(
                scope.settings, loaded.ability_id, endpoint, kinds.left(deadline)
            )
            prefix = action.body.get("prefix")
            prefix = slug(prefix) + "_" if prefix else ""
            wanted = _remote_name(tool.name, loaded.ability_id, prefix, [t.name for t in remote])
            ok, result = mcp_remote.call_remote_tool(
                scope.settings, endpoint, wanted, arguments, kinds.left(deadline)
            )
            if not ok:
                error = f"the MCP tool {wanted} reported an error"
        else:
            params = {p.name: p for p in loaded.parsed.parameters}
            request = kinds.Request(action, params, arguments, secrets.values, loaded.linked_bot_id)
            ok, result, error = kinds.run(scope, request, deadline, ask)
    except kinds.Failed as exc:
        error = str(exc)
    except ObkError as exc:
        error = str(exc)
    except Exception as exc:  # a bug or an unforeseen failure must not end the conversation
        # The exception's text may hold a value (a URL, a header): log its kind only.
        log.error("ability %s failed unexpectedly: %s", tool.ability_id, type(exc).__name__)
        error = f"the call failed unexpectedly ({type(exc).__name__})"
    duration_ms = int((time.monotonic() - started) * 1000)
    result = _bounded(_redact(result, secrets), MAX_RESULT_CHARS)
    if error is not None:
        error = _bounded(_redact(error, secrets), MAX_ERROR_CHARS)
    return Outcome(ok and error is None, result, error, duration_ms)


def _remote_name(tool_name: str, ability_id: str, prefix: str, remote: Sequence[str]) -> str:
    """Which of the server's tools `tool_name` is (`tools_for` named it, maybe with a suffix)."""
    for name in remote:
        plain = slug(prefix + name)
        suffixed = f"{plain[:57]}_{hashlib.sha1((ability_id + name).encode()).hexdigest()[:6]}"
        if tool_name in (plain, suffixed):
            return name
    raise kinds.Failed(f"the MCP server no longer offers a tool named {tool_name}")
