"""Completions: a bot answers from its backstory, its dataset and the conversation so far.

Streamed as spec events (completeBegin, token..., usage, completeEnd, result). The model runs
outside any write transaction; the exchange is stored in one transaction at the end, so a
request that fails (or whose client goes away) stores nothing and can simply be retried. Its
tokens are charged all the same: reserved from the key's budget before each generation runs,
charged as used when it ends, however it ends (services/metering.py).

A bot with abilities (its skillset's, or the request's `extensions.skillsets`) or a request with
`functions` calls them while answering (services/answering.py runs the loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from openbotkit.errors import InvalidInput, Problem
from openbotkit.models.modelstring import parse_model
from openbotkit.models.prompt import Turn, build_messages, context_block
from openbotkit.models.providers import GenerationOptions, Role
from openbotkit.retrieval.citations import SourceRecord
from openbotkit.services import answering, bots, conversations, datasets, usage
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.services.metering import Meter
from openbotkit.services.prepared import Prepared
from openbotkit.services.search import search_records
from openbotkit.store.tables import Message

DEFAULT_MAX_TOKENS = 256
DEFAULT_INTERACTION_MAX_MESSAGES = 20
ATTACHMENT_CHARS = 4_000  # per attachment: the local model's whole context is 2,048 tokens
ROLE_OF: dict[str, Role] = {"user": "user", "bot": "assistant"}

Event = dict[str, Any]


@dataclass
class BotConfig:
    model: str | None = None
    backstory: str | None = None
    dataset_id: str | None = None
    skillset_id: str | None = None


def _config(ctx: Ctx, bot_id: str | None, inline: BotConfig) -> BotConfig:
    """The bot's settings, overridden by those given inline (conversation or request)."""
    base = BotConfig()
    if bot_id:
        bot = bots.get(ctx, bot_id)
        base = BotConfig(bot.model, bot.backstory, bot.dataset_id, bot.skillset_id)
    return BotConfig(
        inline.model or base.model,
        inline.backstory if inline.backstory is not None else base.backstory,
        inline.dataset_id or base.dataset_id,
        inline.skillset_id or base.skillset_id,
    )


def _prepare(
    ctx: Ctx, config: BotConfig, history: Sequence[Turn], documents: Sequence[str] = ()
) -> Prepared:
    # First: a key whose budget is spent gets nothing (no search, no generation).
    budget = usage.remaining_budget(ctx)
    spec = parse_model(config.model or ctx.settings.default_model)
    provider = ctx.runtime.models.resolve(spec.name)
    limit = spec.interaction_max_messages or DEFAULT_INTERACTION_MAX_MESSAGES
    history = list(history)[-limit:]
    max_tokens = spec.max_tokens or DEFAULT_MAX_TOKENS
    options = GenerationOptions(
        # A key's last tokens are not overdrawn by a long answer (the prompt still counts).
        max_tokens=max_tokens if budget is None else min(max_tokens, budget),
        temperature=float(spec.options.get("temperature", 0.2)),
        top_p=spec.options.get("topP"),
        seed=spec.options.get("seed"),
        frequency_penalty=spec.options.get("frequencyPenalty"),
        presence_penalty=spec.options.get("presencePenalty"),
    )
    context, records, embedder, scores = None, [], None, []
    # Documents the request attached (spec: attachments) are facts before any found record.
    facts = list(documents)
    match_instruction = mismatch_instruction = None
    consulted = False
    if config.dataset_id:
        query = next((t.text for t in reversed(history) if t.role == "user"), "")
        if query.strip():
            dataset = datasets.get(ctx, config.dataset_id)
            found = search_records(ctx, dataset, query)
            records = [SourceRecord(r.id, dataset.id, r.source, r.text) for r in found]
            scores = [r.score for r in found]
            embedder = ctx.runtime.embedder
            facts += [r.text for r in found]
            match_instruction = dataset.match_instruction
            mismatch_instruction = dataset.mismatch_instruction
            consulted = True
    if facts or consulted:
        context = context_block(facts, match_instruction, mismatch_instruction)
    messages = build_messages(
        provider,
        backstory=config.backstory,
        context=context,
        history=history,
        max_new_tokens=options.max_tokens,
    )
    return Prepared(
        provider,
        spec,
        messages,
        options,
        records,
        embedder,
        scores,
        backstory=config.backstory,
        history=history,
        facts=facts,
        match_instruction=match_instruction,
        mismatch_instruction=mismatch_instruction,
    )


@dataclass(frozen=True)
class TurnTools:
    """What a request adds to a turn: client-side `functions`, `extensions` (a backstory put
    after the bot's, a dataset instead of the bot's, skillsets beside the bot's) and `limits`."""

    functions: Sequence[answering.ClientFunction] = ()
    skillset_ids: Sequence[str] = ()
    backstory: str | None = None
    dataset_id: str | None = None
    limits: answering.TurnLimits = field(default_factory=answering.TurnLimits)

    def apply(self, config: BotConfig) -> BotConfig:
        backstory = config.backstory
        if self.backstory:
            backstory = f"{backstory.strip()}\n\n{self.backstory}" if backstory else self.backstory
        return replace(config, backstory=backstory, dataset_id=self.dataset_id or config.dataset_id)

    def skillsets(self, config: BotConfig) -> list[str]:
        ids = [config.skillset_id] if config.skillset_id else []
        return ids + [i for i in self.skillset_ids if i not in ids]


NO_TOOLS = TurnTools()


def _usage_data(done: answering.Answer) -> dict[str, int]:
    return {"inputTokensUsed": done.input_tokens, "outputTokensUsed": done.output_tokens}


def history_limit(ctx: Ctx, config: BotConfig) -> int:
    """How many earlier messages a turn reads: the model string's `interactionMaxMessages`
    (bounded by the parser) or the default. Long conversations cost the same per turn."""
    spec = parse_model(config.model or ctx.settings.default_model)
    return spec.interaction_max_messages or DEFAULT_INTERACTION_MAX_MESSAGES


def _history(ctx: Ctx, conversation_id: str, limit: int) -> list[Turn]:
    """The last `limit` user and bot messages, oldest first."""
    rows = ctx.session.execute(
        select(Message.type, Message.text)
        .where(Message.conversation_id == conversation_id, Message.type.in_(list(ROLE_OF)))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    ).all()
    return [Turn(ROLE_OF[kind], text) for kind, text in reversed(rows)]


def _check_text(text: str | None) -> str | None:
    if text is None:
        return None
    if not text.strip():
        raise InvalidInput(
            "text must not be blank", details=[Problem("/text", "non_blank", "blank")]
        )
    return text.strip()


def converse(
    scope: AccountScope,
    conversation_id: str,
    text: str | None,
    *,
    entities: Sequence[dict[str, Any]] = (),
    with_end: bool = True,
    stored: Callable[[Ctx, str], None] | None = None,
    turn: TurnTools = NO_TOOLS,
) -> Iterator[Event]:
    """Answer in a stored conversation: `text` (if any) is the new user message. `stored` is
    called with the answer inside the transaction that stores the exchange (a channel keeps
    the answer to send with it: both are written, or neither). The turn's tool calls are stored
    with it, as activity messages between the user's message and the answer."""
    text = _check_text(text)
    with scope.transaction(write=False) as ctx:
        conversation = conversations.get(ctx, conversation_id)
        conversation_id = conversation.id
        inline = BotConfig(
            conversation.model,
            conversation.backstory,
            conversation.dataset_id,
            conversation.skillset_id,
        )
        config = turn.apply(_config(ctx, conversation.bot_id, inline))
        history = _history(ctx, conversation_id, history_limit(ctx, config))
        if text is not None:
            history.append(Turn("user", text))
        if not history:
            raise InvalidInput(
                "the conversation has no messages yet: send `text`",
                details=[Problem("/text", "required", "nothing to answer")],
            )
        box = answering.toolbox(ctx, turn.skillsets(config), turn.functions, ask_bot)
        prepared = _prepare(ctx, config, history)
        answering.check_model(prepared, box)
    kept: dict[str, Any] = {}

    def finish(meter: Meter, done: answering.Answer) -> None:
        meta = prepared.answer_meta(done.text)
        meta["usage"] = _usage_data(done)
        with meter.hold.charging(meter.used()) as ctx:
            conversation = conversations.get(ctx, conversation_id)
            if text is not None:
                user = {"type": "user", "text": text, "entities": list(entities)}
                conversations.add_message(ctx, conversation, user)
            last = None
            for activity in done.activities:
                last = conversations.add_message(ctx, conversation, activity)
            if done.reason != "activity":
                bot = {"type": "bot", "text": done.text, "meta": meta}
                last = conversations.add_message(ctx, conversation, bot)
                if stored is not None:
                    stored(ctx, done.text)
            assert last is not None
            kept.update(id=last.id, meta=meta)

    done = yield from answering.answer(scope, prepared, box, turn.limits, finish)
    result: dict[str, Any] = {
        "id": kept["id"],
        "text": done.text,
        "usage": {"token": done.input_tokens + done.output_tokens},
        "meta": _result_meta(kept["meta"], done),
    }
    if with_end:
        result["end"] = {"reason": done.reason}
    yield {"type": "result", "data": result}


def _result_meta(meta: dict[str, Any], done: answering.Answer) -> dict[str, Any]:
    """The answer's meta, with the turn's calls (`activities`: each call's meta.activity) when
    there were any: an unstreamed reply (and a client-side call) reads them here."""
    if not done.activities:
        return meta
    return {**meta, "activities": [a["meta"]["activity"] for a in done.activities]}


def attachment_texts(scope: AccountScope, urls: Sequence[str]) -> list[str]:
    """The text of each attachment: fetched like a URL upload (the one fetcher: public
    addresses only, a total deadline, size capped, no transaction open), parsed like a file but
    only as far as ATTACHMENT_CHARS (a bigger file stops there, kept, rather than being
    expanded whole for a few thousand characters), errors naming `/attachments/<i>`."""
    if not urls:
        return []
    from openbotkit.ingestion.parsers import ParseLimits, parse
    from openbotkit.services.file_content import fetch_url

    limits = ParseLimits.from_settings(scope.settings, truncate_at=ATTACHMENT_CHARS)
    texts = []
    for i, url in enumerate(urls):
        field = f"/attachments/{i}"
        staged = fetch_url(scope.runtime, url, field=field)
        try:
            data = staged.path.read_bytes()
        finally:
            scope.runtime.blobs.release_staged(staged.path)
        sections = parse(data, staged.content_type, staged.name, limits, field=field)
        text = "\n".join(s.text for s in sections).strip()
        if text:
            texts.append(text[:ATTACHMENT_CHARS])
    return texts


def complete_messages(
    scope: AccountScope,
    messages: Sequence[dict[str, Any]],
    bot_id: str | None,
    inline: BotConfig,
    *,
    attachments: Sequence[str] = (),
    turn: TurnTools = NO_TOOLS,
) -> Iterator[Event]:
    """A stateless completion over the given messages; nothing but the token usage is stored."""
    history = [Turn(ROLE_OF[m["type"]], m["text"]) for m in messages if m["type"] in ROLE_OF]
    if not history:
        raise InvalidInput(
            "messages need at least one user or bot message",
            details=[Problem("/messages", "min_items", "no user or bot message")],
        )
    if attachments:
        with scope.transaction(write=False) as ctx:
            # A key that cannot pay for the least completion (a token per message and one of
            # answer) has nothing fetched or parsed for it.
            usage.remaining_budget(ctx, at_least=len(history) + 1)
    documents = attachment_texts(scope, attachments)
    with scope.transaction(write=False) as ctx:
        config = turn.apply(_config(ctx, bot_id, inline))
        box = answering.toolbox(ctx, turn.skillsets(config), turn.functions, ask_bot)
        prepared = _prepare(ctx, config, history, documents)
        answering.check_model(prepared, box)
    kept: dict[str, Any] = {}

    def finish(meter: Meter, done: answering.Answer) -> None:
        kept["meta"] = prepared.answer_meta(done.text)
        meter.hold.settle(meter.used())

    done = yield from answering.answer(scope, prepared, box, turn.limits, finish)
    yield {
        "type": "result",
        "data": {
            "text": done.text,
            "usage": {"token": done.input_tokens + done.output_tokens},
            "end": {"reason": done.reason},
            "meta": _result_meta(kept["meta"], done),
        },
    }


def ask_bot(scope: AccountScope, bot_id: str, prompt: str) -> Iterator[Event]:
    """Another bot's completion of `prompt`, as an ability that asks it runs it (with a scope
    naming the chain of bots asking: services/ability_kinds.py bounds it)."""
    return complete_messages(scope, [{"type": "user", "text": prompt}], bot_id, BotConfig())
