"""What an API key may do: an effect scope, the bots and datasets it reaches, a budget, a life.

The engine calls `authorize` before it runs any action for a key, whatever the surface (REST,
the connector's HTTP backend, MCP over HTTP all authenticate to a `Key`), so the rules live here
once. What an action touches is read from its input's id fields (the registry knows them), each
resolved to the bot or dataset that owns it:

- a bot and a dataset are themselves;
- a conversation belongs to its bot (one without a bot, to its dataset);
- a file belongs to the datasets it is attached to: a key reaches it only when every one of
  them is the key's (otherwise a change to the file would reach a dataset the key may not);
- records, messages and attachments are reached through the parent their path names.

A key limited to resources is refused an action that names none (account-wide lists, usage)
and the creation of a bot, dataset or file (a new one is outside its list by definition; a new
conversation belongs to the bot it names): it must not learn what else exists, and a public
page's key must not list the conversations of other visitors. Lists inside a reachable resource (a
dataset's records, a conversation's messages) work. Changing or deleting a listed bot or
dataset itself takes the destructive scope: a write key uses it, it does not reconfigure it.
A limited key may make another key (`create_token`), never wider than itself
(services/tokens.py checks every limit).

Skillsets, their abilities and the secrets abilities use are account-level: a key limited to
bots or datasets (a public key, a session token) never reads, lists, creates or changes them,
and never names one (a bot's or conversation's skillsetId, an ability's linkedSecretId). A
secret's value is the operator's credential; a skillset decides what the bot can do.

A *public* key (limited, with a scope below destructive: what a web page holds) does less:

- it never sets a bot's configuration (model with its limits, backstory, dataset, skillset,
  privacy, moderation) on a conversation or a completion: those choose what the operator pays
  for and what the bot says;
- of its bots it may read one (its view hides the backstory: actions/base.py, public_view)
  and start a conversation with it; no stateless completion in a bot's name;
- it reaches a conversation only to open its first session (services/sessions.py): after that,
  the conversation is the session token's alone, so visitors sharing a page's key never reach
  each other's conversations.

A conversation session token is a key limited to its one conversation: it calls the actions
declared `session=True` (read the conversation and its messages, add a message, complete) on
that conversation and nothing else.

A key's token budget is reserved where a model is about to run (usage.reserve) and charged as
used when the completion ends; its expiry is checked where the secret is authenticated
(secrets.check_live).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from openbotkit.access import Effect, Key
from openbotkit.errors import Problem, ScopeMissing
from openbotkit.store.tables import Bot, Conversation, Dataset, DatasetFile, File

if TYPE_CHECKING:
    from openbotkit.services.context import Ctx

# Resource kinds a key may be limited to directly.
LISTED = ("bot", "dataset")
# Kinds a limited key may create: a new one belongs to the bot (or dataset) its input names.
OWNED = ("conversation",)
# Kinds a limited key may create whose limits the service bounds by the key's own: a new key
# is never wider than the one that makes it (services/tokens.py).
BOUNDED = ("token",)
# Kinds only a key without bot or dataset limits reaches (module docstring).
ACCOUNT_LEVEL = ("skillset", "ability", "secret")


@dataclass(frozen=True)
class Call:
    """What the registry says one action call does: its name and effect, the kind of resource
    it changes itself (`update_bot`: bot) or creates (`create_bot`: bot), and the resources its
    input names as (kind, id or @alias)."""

    action: str
    effect: Effect
    target: str | None = None
    creates: str | None = None
    refs: Sequence[tuple[str, str]] = ()
    # The bot configuration fields the input gives (by alias): refused to a public key.
    configures: Sequence[str] = ()
    # A conversation session token may make this call; this call opens a session.
    in_session: bool = False
    starts_session: bool = False


def authorize(ctx: Ctx, key: Key, call: Call) -> None:
    """Raise ScopeMissing, naming the scope or resource needed, unless `key` may make `call`."""
    if key.unrestricted:
        return
    if key.conversation is not None:
        _authorize_session(key, key.conversation, call)
        return
    needed = call.effect
    if key.limited and call.target in LISTED and needed is Effect.WRITE:
        needed = Effect.DESTRUCTIVE
    if not key.scope.includes(needed):
        why = (
            f"; changing a {call.target} the key is limited to counts as destructive"
            if needed is not call.effect
            else ""
        )
        raise ScopeMissing(
            f"{call.action} needs scope {needed.value}; this key has {key.describe()}{why}"
        )
    if not key.limited or call.creates in BOUNDED:
        return
    if not call.refs or (call.creates is not None and call.creates not in OWNED):
        raise ScopeMissing(
            f"{call.action} reaches the whole account or creates a resource outside this key's"
            f" limits; it needs a key without bot or dataset limits (this key has"
            f" {key.describe()})"
        )
    if key.public:
        _authorize_public(key, call)
    account_level = [ref for kind, ref in call.refs if kind in ACCOUNT_LEVEL]
    if account_level or call.creates in ACCOUNT_LEVEL:
        raise ScopeMissing(
            f"{call.action}: skillsets, abilities and secrets are reached only by a key without"
            f" bot or dataset limits (this key has {key.describe()})"
        )
    for kind, ref in call.refs:
        if not _reaches(ctx, key, kind, ref):
            raise ScopeMissing(
                f"{call.action} needs access to {kind} {ref}; this key has {key.describe()}"
            )


def _authorize_public(key: Key, call: Call) -> None:
    """What a public key may not do even within its bots and datasets (module docstring)."""
    if call.configures:
        names = ", ".join(call.configures)
        raise ScopeMissing(
            f"{call.action}: a key limited to bots or datasets without the destructive scope"
            f" may not set {names} (the bot's configuration decides them); this key has"
            f" {key.describe()}",
            details=[
                Problem(f"/{name}", "public_key", "not settable with a limited key")
                for name in call.configures
            ],
        )
    kinds = {kind for kind, _ in call.refs}
    if "conversation" in kinds and not call.starts_session:
        ref = next(ref for kind, ref in call.refs if kind == "conversation")
        raise ScopeMissing(
            f"{call.action} reaches conversation {ref} only through a session token: open one"
            f" with POST /conversation/{ref}/session/create when you create the conversation"
            f" (this key has {key.describe()})"
        )
    reads_bot = call.target == "bot" and call.effect is Effect.READ
    if "bot" in kinds and call.creates != "conversation" and not reads_bot:
        raise ScopeMissing(
            f"{call.action} is not open to a key limited to bots without the destructive scope:"
            f" it may read its bot, start a conversation with it and open that conversation's"
            f" session (this key has {key.describe()})"
        )


def _authorize_session(key: Key, conversation_id: str, call: Call) -> None:
    """A session token: the `session=True` actions, on its own conversation, within scope."""
    if not call.in_session:
        raise ScopeMissing(
            f"{call.action} is not open to a conversation session token: it reads conversation"
            f" {conversation_id} and its messages, adds messages and completes it"
        )
    if not key.scope.includes(call.effect):
        raise ScopeMissing(
            f"{call.action} needs scope {call.effect.value}; this key has {key.describe()}"
        )
    if call.configures:
        _authorize_public(key, call)  # refuses what it configures
    for kind, ref in call.refs:
        if (kind, ref) != ("conversation", conversation_id):
            raise ScopeMissing(
                f"{call.action} needs access to {kind} {ref}; this session token reaches"
                f" conversation {conversation_id} alone"
            )
    if not call.refs:
        raise ScopeMissing(f"{call.action} names no conversation; a session token reaches one")


def reaches(ctx: Ctx, key: Key, kind: str, ref: str) -> bool:
    """Whether a limited `key` reaches a bot, dataset, conversation or file (id or @alias)."""
    return _reaches(ctx, key, kind, ref)


def _reaches(ctx: Ctx, key: Key, kind: str, ref: str) -> bool:
    """Whether `key` reaches the resource; unknown ids are simply out of reach (no oracle)."""
    bots, datasets = key.bots or frozenset(), key.datasets or frozenset()
    if kind == "bot":
        return _resolve(ctx, Bot, ref) in bots
    if kind == "dataset":
        return _resolve(ctx, Dataset, ref) in datasets
    if kind == "conversation":
        row = ctx.session.execute(
            select(Conversation.bot_id, Conversation.dataset_id).where(
                Conversation.account_id == ctx.account_id, Conversation.id == ref
            )
        ).first()
        if row is None:
            return False
        bot_id, dataset_id = row
        return bot_id in bots if bot_id else dataset_id in datasets
    if kind == "file":
        file_id = _resolve(ctx, File, ref)
        if file_id is None:
            return False
        owners = set(
            ctx.session.scalars(
                select(DatasetFile.dataset_id).where(
                    DatasetFile.account_id == ctx.account_id, DatasetFile.file_id == file_id
                )
            )
        )
        return bool(owners) and owners <= datasets
    return False


def _resolve(ctx: Ctx, table: type[Bot] | type[Dataset] | type[File], ref: str) -> str | None:
    """The id of the caller's row named by an id or an @alias, or None."""
    cond = table.alias == ref[1:] if ref.startswith("@") else table.id == ref
    found: str | None = ctx.session.scalar(
        select(table.id).where(table.account_id == ctx.account_id, cond)
    )
    return found
