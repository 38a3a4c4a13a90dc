"""One turn's answer, calling the bot's abilities and the request's functions on the way.

A turn is a loop of generations. A model that calls tools natively (an OpenAI-compatible entry)
is offered them; each call it makes is run (`services.tools.call`, which never raises: a failed
call comes back as a failure the model reads) and recorded as an `activity` message, streamed as
it happens; the model then reads the results and answers or calls again, within the turn's
limits (`TurnLimits`). The local model cannot hold such a loop: it chooses one action under a
JSON grammar, the platform runs it, and a fresh grounded answer reads the result as a numbered
fact. A client-side function (the request's `functions`) without a fixed result ends the turn:
the call goes back to the client (a `waitForChannelMessageBegin` event, as ChatBotKit's SDK agent
helpers read it, and the result's `end.reason` "activity").

Every generation is metered on its own (services/metering.py): reserved before it runs, charged
as used when it ends. The last one is charged inside the caller's `finish`, which stores the
exchange (a stored conversation) in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from openbotkit.errors import InvalidInput, Problem
from openbotkit.models.providers import (
    ChatMessage,
    Finished,
    GenerationOptions,
    Token,
    ToolCall,
    ToolChooser,
    ToolSpec,
    tool_mode,
)
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.services.metering import Meter, metered
from openbotkit.services.prepared import Prepared

if TYPE_CHECKING:
    from openbotkit.services.ability_kinds import Asker
    from openbotkit.services.tools import Tool

Event = dict[str, Any]

# Per turn, unless the request's `limits` say otherwise: model rounds that are offered tools
# (one more, without tools, answers when they run out), tool calls in all, and seconds for all
# the calls together.
DEFAULT_ITERATIONS = 4
DEFAULT_CALLS = 8
CALLS_DEADLINE_S = 60.0
# What an activity message keeps of a call's result (tools.call bounds what the model reads).
ACTIVITY_RESULT_CHARS = 2_000
# History turns the local model reads to choose an action (the question is the last one).
CHOICE_HISTORY = 4


@dataclass(frozen=True)
class TurnLimits:
    iterations: int = DEFAULT_ITERATIONS
    calls: int = DEFAULT_CALLS
    deadline_s: float = CALLS_DEADLINE_S


@dataclass(frozen=True)
class ClientFunction:
    """A function the request declares (`functions[]`): the client runs it, unless it gives a
    fixed `result.data`, which the platform hands the model itself. `channel` is what the
    client listens on (`result.channel`; the function's name otherwise)."""

    name: str
    description: str
    parameters: dict[str, Any]
    data: Any = None
    fixed: bool = False
    channel: str | None = None


@dataclass
class Toolbox:
    """What the model may call this turn, by the name it sees."""

    abilities: dict[str, Tool] = field(default_factory=dict)
    functions: dict[str, ClientFunction] = field(default_factory=dict)
    # How an ability asks another bot (completion.ask_bot: the completion is above this module).
    ask: Asker | None = None

    def __bool__(self) -> bool:
        return bool(self.abilities or self.functions)

    def specs(self) -> list[ToolSpec]:
        found = [ToolSpec(t.name, t.description, t.parameters) for t in self.abilities.values()]
        found += [ToolSpec(f.name, f.description, f.parameters) for f in self.functions.values()]
        return found


def toolbox(
    ctx: Ctx,
    skillset_ids: Sequence[str],
    functions: Sequence[ClientFunction],
    ask: Asker | None = None,
) -> Toolbox:
    """The abilities of these skillsets and the request's functions. A function named like an
    ability is refused (the model could not tell them apart)."""
    box = Toolbox(ask=ask)
    if skillset_ids:
        from openbotkit.services.tools import tools_for

        box.abilities = {t.name: t for t in tools_for(ctx, skillset_ids)}
    for i, function in enumerate(functions):
        if function.name in box.abilities or function.name in box.functions:
            raise InvalidInput(
                f"functions[{i}].name {function.name!r} is already a tool of this turn",
                details=[Problem(f"/functions/{i}/name", "unique", "names a tool twice")],
            )
        box.functions[function.name] = function
    return box


def check_model(prepared: Prepared, box: Toolbox) -> None:
    """A turn with tools on a model that can call none is an error naming the model: never an
    answer that silently ignores them."""
    if box and tool_mode(prepared.provider) == "none":
        raise InvalidInput(
            f"model {prepared.spec.name!r} cannot call tools, and this turn has "
            f"{len(box.specs())} (the skillset's abilities or the request's functions): use a "
            "model that can (the bundled local models, or an OpenAI-compatible entry without "
            '"tools": false in OBK_MODELS_FILE)',
            details=[Problem("/model", "tools_unsupported", "this model cannot call tools")],
        )


@dataclass
class Answer:
    """How the turn ended: the answer, its end reason (stop, length, iteration: a limit held
    the tools back; activity: a client-side function was called), every call's activity
    message, and the tokens of all its generations."""

    text: str
    reason: str
    activities: list[dict[str, Any]]
    input_tokens: int = 0
    output_tokens: int = 0


Finish = Callable[[Meter, Answer], None]


@dataclass
class _State:
    limits: TurnLimits
    deadline: float
    calls: int = 0
    rounds: int = 0
    limited: bool = False
    input_tokens: int = 0
    output_tokens: int = 0
    activities: list[dict[str, Any]] = field(default_factory=list)
    requested: list[dict[str, Any]] = field(default_factory=list)
    began: bool = False

    def begin(self) -> Iterator[Event]:
        """completeBegin, once: after the first generation's hold is taken, so a key whose
        budget cannot pay is refused before the stream starts (a 402, not a broken stream)."""
        if not self.began:
            self.began = True
            yield {"type": "completeBegin", "data": {}}

    def offer(self) -> bool:
        """Whether the next generation may call tools: rounds, calls and time left."""
        left = (
            self.rounds < self.limits.iterations
            and self.calls < self.limits.calls
            and time.monotonic() < self.deadline
        )
        if not left:
            self.limited = True
        return left


def answer(
    scope: AccountScope,
    prepared: Prepared,
    box: Toolbox,
    limits: TurnLimits,
    finish: Finish,
) -> Generator[Event, None, Answer]:
    """The turn's events (completeBegin, tokens, usage, activity messages, completeEnd); calls
    `finish` with the last generation's meter and the answer, inside that generation's hold."""
    state = _State(limits, time.monotonic() + limits.deadline_s)
    messages = list(prepared.messages)
    mode = tool_mode(prepared.provider) if box else "none"
    if mode == "choice" and state.offer():
        messages, ended = yield from _choose(scope, prepared, box, state, finish)
        mode = "none"  # one action, then the grounded answer
        if ended is not None:
            yield {"type": "completeEnd", "data": {}}
            return ended
    while True:
        offered = mode == "native" and bool(box) and state.offer()
        if state.requested:
            offered = False
        options = replace(prepared.options, tools=tuple(box.specs()) if offered else ())
        with _metered(scope, prepared, messages, options) as (meter, options):
            yield from state.begin()
            calls = yield from _generate(prepared, messages, options, meter, state)
            if not calls or not offered:
                result = _answer(state, meter, reason=None)
                finish(meter, result)
                break
            # The calls run while this generation's hold is kept (a hold, not a transaction):
            # a client-side call ends the turn and is charged with this generation.
            state.rounds += 1
            text = "".join(meter.answer)
            messages.append(ChatMessage("assistant", text, tool_calls=tuple(calls)))
            for call in calls:
                content = yield from _run(scope, box, call, state)
                messages.append(ChatMessage("tool", content, tool_call_id=call.id))
            if state.requested:
                result = _answer(state, meter, reason="activity", text="")
                finish(meter, result)
                break
    yield {"type": "completeEnd", "data": {}}
    return result


def _answer(state: _State, meter: Meter, *, reason: str | None, text: str | None = None) -> Answer:
    if reason is None:
        reason = "iteration" if state.limited else meter.end.reason
    return Answer(
        "".join(meter.answer).strip() if text is None else text,
        reason,
        state.activities,
        state.input_tokens,
        state.output_tokens,
    )


class _metered:
    """metering.metered for one generation of the turn, its answer capped at what the key's
    budget leaves; yields the meter and the options with that cap."""

    def __init__(
        self,
        scope: AccountScope,
        prepared: Prepared,
        messages: list[ChatMessage],
        options: GenerationOptions,
    ) -> None:
        self.inner = metered(scope, prepared.provider, messages, options.max_tokens)
        self.options = options

    def __enter__(self) -> tuple[Meter, GenerationOptions]:
        meter = self.inner.__enter__()
        if meter.hold.output_limit is not None:
            self.options = replace(self.options, max_tokens=meter.hold.output_limit)
        return meter, self.options

    def __exit__(self, *exc: Any) -> bool | None:
        return self.inner.__exit__(*exc)


def _generate(
    prepared: Prepared,
    messages: list[ChatMessage],
    options: GenerationOptions,
    meter: Meter,
    state: _State,
    *,
    events: Iterator[Any] | None = None,
    stream_tokens: bool = True,
) -> Generator[Event, None, list[ToolCall]]:
    """One generation's events; fills the meter, returns the tools it called."""
    calls: list[ToolCall] = []
    source = events if events is not None else prepared.provider.stream(messages, options)
    for event in source:
        if isinstance(event, Token):
            meter.answer.append(event.text)
            if stream_tokens:
                yield {"type": "token", "data": {"token": event.text}}
        elif isinstance(event, ToolCall):
            calls.append(event)
        elif isinstance(event, Finished):
            meter.finished.append(event)
            state.input_tokens += event.input_tokens
            state.output_tokens += event.output_tokens
            yield {
                "type": "usage",
                "data": {
                    "model": prepared.spec.name,
                    "inputTokensUsed": event.input_tokens,
                    "outputTokensUsed": event.output_tokens,
                },
            }
    return calls


def _choose(
    scope: AccountScope, prepared: Prepared, box: Toolbox, state: _State, finish: Finish
) -> Generator[Event, None, tuple[list[ChatMessage], Answer | None]]:
    """The local model picks one action (or none) under a grammar; the platform runs it; the
    prompt for the answer is rebuilt with its result as a fact. A client-side function chosen
    ends the turn here (the second value: the turn's answer)."""
    provider = prepared.provider
    assert isinstance(provider, ToolChooser)
    specs = box.specs()
    messages = choice_messages(prepared.backstory, prepared.history, specs)
    options = replace(prepared.options, temperature=0.0)
    with _metered(scope, prepared, messages, options) as (meter, options):
        yield from state.begin()
        events = provider.choose(messages, specs, options)
        yield from _generate(
            prepared, messages, options, meter, state, events=events, stream_tokens=False
        )
        state.rounds += 1
        call = parse_choice("".join(meter.answer))
        if call is None:
            return list(prepared.messages), None
        outcome = yield from _run(scope, box, call, state)
        if state.requested:
            ended = _answer(state, meter, reason="activity", text="")
            finish(meter, ended)
            return list(prepared.messages), ended
    return prepared.with_facts([_fact(call, outcome)]), None


def _fact(call: ToolCall, outcome: str) -> str:
    """A call's result as the grounded answer reads it: which action, with what, and what
    it gave (or how it failed)."""
    args = ", ".join(f"{k}={v}" for k, v in call.arguments.items())
    return f"Result of {call.name}({args}): {outcome}"


def choice_messages(
    backstory: str | None, history: Sequence[Any], tools: Sequence[ToolSpec]
) -> list[ChatMessage]:
    """The prompt the local model chooses an action from: the tools (name, what it does, its
    arguments), then the last turns of the conversation."""
    lines = []
    for tool in tools:
        props = (tool.parameters or {}).get("properties") or {}
        args = ", ".join(
            f"{name} ({(schema or {}).get('description') or (schema or {}).get('type', 'value')})"
            for name, schema in props.items()
        )
        said = f" Arguments: {args}." if args else ""
        lines.append(f"- {tool.name}: {tool.description}{said}")
    system = (
        (f"{backstory.strip()}\n\n" if backstory else "")
        + "You can use these tools:\n"
        + "\n".join(lines)
        + "\n\nChoose the one tool that helps answer the user's last message and fill in its "
        'arguments from the conversation, or choose "none" when no tool is needed. '
        'Reply with JSON: {"tool": ..., "arguments": {...}}.'
    )
    recent = list(history)[-CHOICE_HISTORY:]
    return [ChatMessage("system", system), *(ChatMessage(t.role, t.text) for t in recent)]


def parse_choice(text: str) -> ToolCall | None:
    """The chosen action, or None for "none" (or for text that is not a choice: the grammar
    keeps to the schema, but a generation cut short by its token cap may not close it)."""
    try:
        # strict=False: llama.cpp's JSON grammar lets a string hold a raw newline.
        data = json.loads(text, strict=False)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("tool"), str):
        return None
    name = data["tool"]
    arguments = data.get("arguments")
    if name == "none":
        return None
    return ToolCall("choice_1", name, arguments if isinstance(arguments, dict) else {})


def _run(
    scope: AccountScope, box: Toolbox, call: ToolCall, state: _State
) -> Generator[Event, None, str]:
    """Run one call (or refuse it: unknown name, bad arguments, a limit reached), record it as
    an activity message, stream it, and return what the model reads of it."""
    ability = box.abilities.get(call.name)
    function = box.functions.get(call.name)
    if function is not None and not function.fixed:
        request = {"name": call.name, "arguments": call.arguments, "callId": call.id}
        state.requested.append(request)
        activity = _activity(None, call, "requested", 0, None, None)
        state.activities.append(activity)
        yield {"type": "message", "data": activity}
        channel = function.channel or function.name
        yield {
            "type": "waitForChannelMessageBegin",
            "data": {"channel": channel, "function": {"name": call.name, "args": call.arguments}},
        }
        return "requested from the client"
    started = time.monotonic()
    error: str | None = None
    result: str | None = None
    left = state.deadline - started
    if call.malformed:
        error = f"{call.name}: {call.malformed}"
    elif ability is None and function is None:
        error = f"there is no tool named {call.name!r}"
    elif state.calls >= state.limits.calls:
        error = f"the turn's limit of {state.limits.calls} calls is reached"
        state.limited = True
    elif left <= 0:
        error = "the turn's deadline for calls has passed"
        state.limited = True
    elif function is not None:
        state.calls += 1
        data = function.data
        result = data if isinstance(data, str) else json.dumps(data)
    else:
        from openbotkit.services import tools

        assert ability is not None
        state.calls += 1
        outcome = tools.call(scope, ability, call.arguments, deadline_s=left, ask=box.ask)
        result, error = (outcome.result, None) if outcome.ok else (None, outcome.error)
    status = "error" if error is not None else "ok"
    duration = int((time.monotonic() - started) * 1000)
    ability_id = ability.ability_id if ability is not None else None
    activity = _activity(ability_id, call, status, duration, error, result)
    state.activities.append(activity)
    yield {"type": "message", "data": activity}
    if error is not None:
        return f"The call failed: {error}"
    return result or ""


def _activity(
    ability_id: str | None,
    call: ToolCall,
    status: str,
    duration_ms: int,
    error: str | None,
    result: str | None,
) -> dict[str, Any]:
    """A call as the conversation records it: a message of type activity."""
    bounded = result[:ACTIVITY_RESULT_CHARS] if result is not None else None
    return {
        "type": "activity",
        "text": f"{call.name} → {status}",
        "meta": {
            "activity": {
                "abilityId": ability_id,
                "name": call.name,
                "arguments": call.arguments,
                "status": status,
                "durationMs": duration_ms,
                "error": error,
                "result": bounded,
            }
        },
    }
