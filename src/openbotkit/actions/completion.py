"""Completion (spec §3.4–3.5): complete, the stateless complete, send and receive.

Each declares a `stream` of spec events; its plain form runs the same stream and returns the
final `result`, so streamed and unstreamed answers are one code path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field

from openbotkit.actions.base import MAX_INT, NOT_BLANK, BotConfigFields, Input, Output
from openbotkit.actions.conversations import Contact, CreateMessageOutput, Entity, MessageType
from openbotkit.actions.registry import Effect, action
from openbotkit.errors import InternalError
from openbotkit.services import answering, completion, contacts, conversations, crud, skillsets
from openbotkit.services.completion import BotConfig
from openbotkit.services.context import AccountScope
from openbotkit.store.tables import Dataset, Skillset

OutT = TypeVar("OutT", bound=BaseModel)
Events = Iterator[dict[str, Any]]


def result_of(events: Events, output: type[OutT]) -> OutT:
    """Run a stream to its end and return its `result` event as the action's output."""
    for event in events:
        if event["type"] == "result":
            return output.model_validate(event["data"])
    raise InternalError("the completion ended without a result")


class FunctionResult(Input):
    """Where the call's result comes from: `data`, a fixed result the platform hands the model
    itself; otherwise the client runs the function (the turn ends with the call), `channel`
    naming it in the `waitForChannelMessageBegin` event."""

    data: Any = None
    channel: Annotated[str, Field(max_length=128)] | None = None


class Function(Input):
    """A function the model may call, run by the client (or answered by its fixed result)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: Annotated[str, Field(max_length=4_000)]
    parameters: dict[str, Any]
    result: FunctionResult | None = None
    call: dict[str, bool] | None = None

    def client_function(self) -> answering.ClientFunction:
        result = self.result
        fixed = result is not None and "data" in result.model_fields_set
        return answering.ClientFunction(
            self.name,
            self.description,
            self.parameters,
            data=result.data if result is not None else None,
            fixed=fixed,
            channel=result.channel if result is not None else None,
        )


class Limits(Input):
    iterations: Annotated[int, Field(ge=1, le=MAX_INT)] | None = Field(
        None,
        description=f"Model rounds offered tools (default {answering.DEFAULT_ITERATIONS}); "
        "one more, without tools, answers after them.",
    )
    continuations: Annotated[int, Field(ge=1, le=MAX_INT)] | None = Field(
        None, description="Accepted for compatibility; an answer is never continued."
    )
    calls: Annotated[int, Field(ge=1, le=MAX_INT)] | None = Field(
        None, description=f"Tool calls in the turn (default {answering.DEFAULT_CALLS})."
    )


class Extensions(Input):
    """What a request adds to the bot for one turn."""

    backstory: Annotated[str, Field(max_length=20_000)] | None = Field(
        None, description="Put after the bot's backstory."
    )
    datasets: Annotated[list[str], Field(max_length=1)] | None = Field(
        None, description="A dataset (id) to answer from instead of the bot's."
    )
    skillsets: Annotated[list[str], Field(max_length=8)] | None = Field(
        None, description="Skillsets (ids) whose abilities join the bot's."
    )


MAX_FUNCTIONS = 64


class TurnOptions(Input):
    functions: Annotated[list[Function], Field(max_length=MAX_FUNCTIONS)] | None = Field(
        None,
        description="Client-side functions the model may call: a call ends the turn and comes "
        "back to the client (`waitForChannelMessageBegin`, `end.reason` activity), unless the "
        "function gives a fixed `result.data`.",
    )
    extensions: Extensions | None = Field(
        None, description="Inline backstory, dataset and skillsets for this turn."
    )
    limits: Limits | None = Field(
        None, description="Per-turn caps on model rounds with tools and on tool calls."
    )

    def turn_tools(self, scope: AccountScope) -> completion.TurnTools:
        """The turn's tools and limits; skillsets and a dataset named in `extensions` must be
        the account's (not_found naming the entry otherwise, as for a bot's), by id or @alias."""
        ext = self.extensions or Extensions()
        limits = self.limits or Limits()
        skillset_ids: list[str] = []
        dataset_id = None
        if ext.skillsets or ext.datasets:
            with scope.transaction(write=False) as ctx:
                for i, ref in enumerate(ext.skillsets or []):
                    field = f"extensions/skillsets/{i}"
                    skillset_ids.append(crud.get_owned(ctx, Skillset, ref, field=field).id)
                for i, ref in enumerate(ext.datasets or []):
                    field = f"extensions/datasets/{i}"
                    dataset_id = crud.get_owned(ctx, Dataset, ref, field=field).id
        return completion.TurnTools(
            functions=[f.client_function() for f in self.functions or []],
            skillset_ids=skillset_ids,
            backstory=ext.backstory,
            dataset_id=dataset_id,
            limits=answering.TurnLimits(
                iterations=limits.iterations or answering.DEFAULT_ITERATIONS,
                calls=limits.calls or answering.DEFAULT_CALLS,
            ),
        )


class Usage(Output):
    token: int


class End(Output):
    reason: Literal["stop", "length", "activity", "abort", "error", "iteration"]


AnswerMeta = Field(
    None,
    description="The bot message's meta: `sources` (record ids put in the prompt), `model`, and "
    "with a dataset `citations` ([{start, end, recordId, datasetId, source, quote}]: the answer "
    "span and the verbatim record text supporting it), `unsupported` ([{start, end}]) and "
    "`grounding` (supported share of the answer's characters).",
)


class CompleteOutput(Output):
    id: str
    text: str
    usage: Usage
    end: End
    meta: dict[str, Any] | None = AnswerMeta


class CompleteConversationInput(TurnOptions):
    conversation_id: str
    text: str | None = Field(
        None, pattern=NOT_BLANK, description="The user's message; omit to continue as is."
    )
    entities: list[Entity] | None = None


def stream_complete(scope: AccountScope, inp: CompleteConversationInput) -> Events:
    entities = [e.model_dump(exclude_none=True) for e in inp.entities or []]
    return completion.converse(
        scope, inp.conversation_id, inp.text, entities=entities, turn=inp.turn_tools(scope)
    )


@action(
    "complete_conversation",
    Effect.WRITE,
    "POST /conversation/{conversationId}/complete",
    open_world=True,  # the model may be a remote one
    own_transactions=True,
    stream=stream_complete,
    session=True,
)
def complete_conversation(scope: AccountScope, inp: CompleteConversationInput) -> CompleteOutput:
    """Send a message (optional) and get the bot's answer, grounded in its dataset."""
    return result_of(stream_complete(scope, inp), CompleteOutput)


# A stateless complete carries its history in the request: bounded like a stored one's.
MAX_MESSAGES = 1_000
MAX_ATTACHMENTS = 5


class StatelessMessage(Input):
    type: MessageType
    text: str
    meta: dict[str, Any] | None = None


class Attachment(Input):
    url: Annotated[str, Field(pattern=r"^https?://", max_length=2048)] = Field(
        description="An http(s) URL; fetched (public addresses only) and read as context."
    )


class CompleteMessagesInput(TurnOptions, BotConfigFields):
    messages: Annotated[
        list[StatelessMessage],
        Field(
            min_length=1,
            max_length=MAX_MESSAGES,
            description="At least one user or bot message.",
            json_schema_extra={"contains": {"properties": {"type": {"enum": ["user", "bot"]}}}},
        ),
    ]
    bot_id: str | None = None
    contact_id: str | Contact | None = Field(
        None, description="Who is asking: a contact id, or a contact by fingerprint."
    )
    attachments: Annotated[list[Attachment], Field(max_length=MAX_ATTACHMENTS)] | None = Field(
        None, description="Documents the answer may draw on (their text joins the context)."
    )
    namespace: str | None = Field(None, description="Accepted for compatibility; not used.")


class CompleteMessagesOutput(Output):
    text: str
    usage: Usage
    end: End
    meta: dict[str, Any] | None = AnswerMeta


def stream_messages(scope: AccountScope, inp: CompleteMessagesInput) -> Events:
    if inp.skillset_id or isinstance(inp.contact_id, str):
        # As for a bot or a conversation, a skillset or contact named inline must be the
        # account's (a contact given by fingerprint names nothing stored: nothing is kept).
        with scope.transaction(write=False) as ctx:
            if inp.skillset_id:
                skillsets.get(ctx, inp.skillset_id)
            if isinstance(inp.contact_id, str):
                contacts.get(ctx, inp.contact_id)
    inline = BotConfig(inp.model, inp.backstory, inp.dataset_id, inp.skillset_id)
    messages = [m.model_dump() for m in inp.messages]
    urls = [a.url for a in inp.attachments or []]
    return completion.complete_messages(
        scope, messages, inp.bot_id, inline, attachments=urls, turn=inp.turn_tools(scope)
    )


@action(
    "complete_messages",
    Effect.WRITE,
    "POST /conversation/complete",
    open_world=True,  # the model may be a remote one
    own_transactions=True,
    stream=stream_messages,
    fetches=lambda inp: bool(inp.attachments),  # each attachment is a URL fetched first
)
def complete_messages(scope: AccountScope, inp: CompleteMessagesInput) -> CompleteMessagesOutput:
    """Answer a list of messages without storing a conversation."""
    return result_of(stream_messages(scope, inp), CompleteMessagesOutput)


class SendInput(TurnOptions):
    conversation_id: str
    text: Annotated[str, Field(min_length=1, pattern=NOT_BLANK)]
    entities: list[Entity] | None = None


def stream_send(scope: AccountScope, inp: SendInput) -> Events:
    with scope.transaction() as ctx:
        conversation = conversations.get(ctx, inp.conversation_id)
        entities = [e.model_dump(exclude_none=True) for e in inp.entities or []]
        message = conversations.add_message(
            ctx, conversation, {"type": "user", "text": inp.text, "entities": entities}
        )
        data = {"id": message.id, "entities": entities}
    yield {"type": "result", "data": data}


@action(
    "send_conversation",
    Effect.WRITE,
    "POST /conversation/{conversationId}/send",
    own_transactions=True,
    stream=stream_send,
    session=True,
)
def send_conversation(scope: AccountScope, inp: SendInput) -> CreateMessageOutput:
    """Add the user's message to a conversation; `receive_conversation` gets the answer."""
    return result_of(stream_send(scope, inp), CreateMessageOutput)


class ReceiveInput(TurnOptions):
    conversation_id: str


class ReceiveOutput(Output):
    id: str
    text: str
    usage: Usage
    meta: dict[str, Any] | None = AnswerMeta


def stream_receive(scope: AccountScope, inp: ReceiveInput) -> Events:
    return completion.converse(
        scope, inp.conversation_id, None, with_end=False, turn=inp.turn_tools(scope)
    )


@action(
    "receive_conversation",
    Effect.WRITE,
    "POST /conversation/{conversationId}/receive",
    open_world=True,  # the model may be a remote one
    own_transactions=True,
    stream=stream_receive,
    session=True,
)
def receive_conversation(scope: AccountScope, inp: ReceiveInput) -> ReceiveOutput:
    """Get the bot's answer to the conversation as it stands."""
    return result_of(stream_receive(scope, inp), ReceiveOutput)
