"""Conversation and message actions (spec §3.1–3.3). Completion lives in actions/completion.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from openbotkit.actions.base import (
    MAX_INT,
    BotConfigFields,
    IdOutput,
    Input,
    Int,
    ListInput,
    ListOutput,
    Meta,
    MetaFilterMixin,
    Output,
    Resource,
    Timestamp,
    public_view,
)
from openbotkit.actions.registry import Effect, action
from openbotkit.services import citations, contacts, conversations, crud, sessions
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Conversation, Message

MessageType = Literal[
    "user", "bot", "reasoning", "context", "instruction", "backstory", "activity", "checkpoint"
]


class Replacement(Input):
    begin: Annotated[int, Field(ge=0, le=MAX_INT)]
    end: Annotated[int, Field(ge=0, le=MAX_INT)]
    text: str


class Entity(Input):
    """A span of a message's text (offsets into it), optionally with a replacement."""

    type: str
    begin: Annotated[int, Field(ge=0, le=MAX_INT)]
    end: Annotated[int, Field(ge=1, le=MAX_INT)]
    text: str
    replacement: Replacement | None = None


class ConversationFields(BotConfigFields):
    name: str | None = None
    description: str | None = None
    meta: Meta = None
    contact_id: str | None = Field(None, description="A contact of the account (its id).")
    task_id: str | None = None
    space_id: str | None = None
    bot_id: str | None = Field(None, description="Bot whose configuration answers here.")
    expires_at: Int | None = Field(None, description="Milliseconds since the epoch, or null.")


class SeedMessage(Input):
    type: MessageType
    text: str


class Contact(Input):
    """The person a conversation is with, identified by the caller's own fingerprint."""

    fingerprint: Annotated[str, Field(min_length=1, max_length=256)]
    name: str | None = None
    description: str | None = None
    email: str | None = None
    phone: str | None = None
    nick: str | None = None
    meta: Meta = None


class CreateConversationInput(ConversationFields):
    messages: list[SeedMessage] | None = Field(None, description="Messages to start with.")
    contact: Contact | None = Field(
        None,
        description="Who the conversation is with: sets contactId to the id of the contact with"
        " this fingerprint (the same fingerprint gives the same id).",
    )


class ConversationRef(Input):
    conversation_id: str


class UpdateConversationInput(ConversationFields, ConversationRef):
    pass


class ListConversationsInput(ListInput, MetaFilterMixin):
    pass


class ConversationOutput(Resource):
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    contact_id: str | None = None
    task_id: str | None = None
    space_id: str | None = None
    bot_id: str | None = None
    model: str | None = None
    backstory: str | None = None
    dataset_id: str | None = None
    skillset_id: str | None = None
    privacy: bool | None = None
    moderation: bool | None = None
    expires_at: int | None = None


# The parametrised page model, looked up once (not per request).
CONVERSATION_PAGE = ListOutput[ConversationOutput]


@action("list_conversations", Effect.READ, "GET /conversation/list")
def list_conversations(ctx: Ctx, inp: ListConversationsInput) -> ListOutput[ConversationOutput]:
    """List conversations, newest first, optionally filtered by meta."""
    rows, cursor = crud.page(ctx, Conversation, inp)
    return CONVERSATION_PAGE(items=rows, cursor=cursor)


@action("fetch_conversation", Effect.READ, "GET /conversation/{conversationId}/fetch", session=True)
def fetch_conversation(ctx: Ctx, inp: ConversationRef) -> ConversationOutput:
    """Fetch one conversation."""
    found = ConversationOutput.model_validate(conversations.get(ctx, inp.conversation_id))
    return public_view(ctx.key, found)


@action("create_conversation", Effect.WRITE, "POST /conversation/create")
def create_conversation(ctx: Ctx, inp: CreateConversationInput) -> IdOutput:
    """Start a conversation with a bot (botId) or an inline model/backstory/dataset."""
    seed = [m.model_dump() for m in inp.messages or []]
    fields = inp.set_fields(exclude={"messages", "contact"})
    if inp.contact is not None:
        # The contact is kept as a contact of the account (made or updated by fingerprint).
        contact = inp.contact.model_dump(exclude={"fingerprint"}, exclude_none=True)
        fields["contact_id"] = contacts.ensure(ctx, inp.contact.fingerprint, contact).id
    return IdOutput(id=conversations.create(ctx, fields, seed).id)


@action(
    "update_conversation",
    Effect.WRITE,
    "POST /conversation/{conversationId}/update",
    idempotent=True,
)
def update_conversation(ctx: Ctx, inp: UpdateConversationInput) -> IdOutput:
    """Change the given fields of a conversation; null clears a field."""
    fields = inp.set_fields(exclude={"conversation_id"})
    return IdOutput(id=conversations.update(ctx, inp.conversation_id, fields).id)


@action("delete_conversation", Effect.DESTRUCTIVE, "POST /conversation/{conversationId}/delete")
def delete_conversation(ctx: Ctx, inp: ConversationRef) -> IdOutput:
    """Delete a conversation and its messages."""
    return IdOutput(id=conversations.delete(ctx, inp.conversation_id))


class CreateSessionInput(ConversationRef):
    duration_in_seconds: int | None = Field(
        None,
        ge=1,
        le=sessions.MAX_SESSION_S,
        description=f"How long the token works: seconds, default {sessions.DEFAULT_SESSION_S},"
        f" at most {sessions.MAX_SESSION_S}; never past the expiry of the key opening it.",
    )


class CreateSessionOutput(Output):
    token: str = Field(
        description="A Bearer token that reaches this conversation alone: read it and its"
        " messages, add messages, complete it. Shown only in this answer."
    )
    expires_at: Timestamp


@action(
    "create_conversation_session",
    Effect.WRITE,
    "POST /conversation/{conversationId}/session/create",
    starts_session=True,
)
def create_conversation_session(ctx: Ctx, inp: CreateSessionInput) -> CreateSessionOutput:
    """Open a session of a conversation: a short-lived token for that conversation alone."""
    expires_at, token = sessions.create(ctx, inp.conversation_id, inp.duration_in_seconds)
    return CreateSessionOutput(token=token, expires_at=expires_at)


# -- messages ------------------------------------------------------------------------------


class MessageRef(ConversationRef):
    message_id: str


class MessageFields(Input):
    entities: list[Entity] | None = None
    name: str | None = None
    description: str | None = None
    meta: Meta = None


class CreateMessageInput(MessageFields, ConversationRef):
    type: MessageType
    text: str


class UpdateMessageInput(MessageFields, MessageRef):
    type: MessageType | None = None
    text: str | None = None


class ListMessagesInput(ListInput, MetaFilterMixin, ConversationRef):
    pass


class EntityOutput(Output):
    type: str
    begin: int
    end: int
    text: str
    replacement: dict[str, object] | None = None


class MessageOutput(Resource):
    type: MessageType
    text: str
    name: str | None = None
    description: str | None = None
    meta: dict[str, object] | None = None
    entities: list[EntityOutput] | None = None


# The parametrised page model, looked up once (not per request).
MESSAGE_PAGE = ListOutput[MessageOutput]


class CreateMessageOutput(Output):
    id: str
    entities: list[EntityOutput]


@action(
    "list_conversation_messages",
    Effect.READ,
    "GET /conversation/{conversationId}/message/list",
    session=True,
)
def list_conversation_messages(ctx: Ctx, inp: ListMessagesInput) -> ListOutput[MessageOutput]:
    """List a conversation's messages, oldest first."""
    conversation = conversations.get(ctx, inp.conversation_id)
    rows, cursor = crud.page(
        ctx, Message, inp, equal={"conversation_id": conversation.id}, default_order="asc"
    )
    return MESSAGE_PAGE(items=rows, cursor=cursor)


@action(
    "fetch_conversation_message",
    Effect.READ,
    "GET /conversation/{conversationId}/message/{messageId}/fetch",
    session=True,
)
def fetch_conversation_message(ctx: Ctx, inp: MessageRef) -> MessageOutput:
    """Fetch one message of a conversation."""
    message = conversations.get_message(ctx, inp.conversation_id, inp.message_id)
    return MessageOutput.model_validate(message)


class CitationCheckOutput(Output):
    record_id: str
    ok: bool = Field(description="The record still holds the quote verbatim.")


class VerifyMessageOutput(Output):
    ok: bool = Field(description="Every citation's quote is still in its record verbatim.")
    citations: list[CitationCheckOutput] = Field(
        description="One entry per citation of the message's meta.citations, in order."
    )


@action(
    "verify_message",
    Effect.READ,
    "POST /conversation/{conversationId}/message/{messageId}/verify",
)
def verify_message(ctx: Ctx, inp: MessageRef) -> VerifyMessageOutput:
    """Check a bot answer's citations: is each quote still in its record, verbatim?"""
    checks = citations.verify(ctx, inp.conversation_id, inp.message_id)
    return VerifyMessageOutput(
        ok=all(c.ok for c in checks),
        citations=[CitationCheckOutput(record_id=c.record_id, ok=c.ok) for c in checks],
    )


@action(
    "create_conversation_message",
    Effect.WRITE,
    "POST /conversation/{conversationId}/message/create",
    session=True,
)
def create_conversation_message(ctx: Ctx, inp: CreateMessageInput) -> CreateMessageOutput:
    """Append a message to a conversation without generating a reply."""
    citations.refuse_record_fields(ctx, inp.meta)
    conversation = conversations.get(ctx, inp.conversation_id)
    fields = inp.set_fields(exclude={"conversation_id"})
    fields["entities"] = [e.model_dump(exclude_none=True) for e in inp.entities or []]
    message = conversations.add_message(ctx, conversation, fields)
    return CreateMessageOutput.model_validate(
        {"id": message.id, "entities": message.entities or []}
    )


@action(
    "update_conversation_message",
    Effect.WRITE,
    "POST /conversation/{conversationId}/message/{messageId}/update",
    idempotent=True,
)
def update_conversation_message(ctx: Ctx, inp: UpdateMessageInput) -> IdOutput:
    """Change a message's type, text, entities, name, description or meta."""
    citations.refuse_record_fields(ctx, inp.meta)
    fields = inp.set_fields(exclude={"conversation_id", "message_id"})
    if "entities" in fields:
        fields["entities"] = [e.model_dump(exclude_none=True) for e in inp.entities or []]
    message = conversations.update_message(ctx, inp.conversation_id, inp.message_id, fields)
    return IdOutput(id=message.id)


@action(
    "delete_conversation_message",
    Effect.DESTRUCTIVE,
    "POST /conversation/{conversationId}/message/{messageId}/delete",
)
def delete_conversation_message(ctx: Ctx, inp: MessageRef) -> IdOutput:
    """Delete one message of a conversation."""
    return IdOutput(id=conversations.delete_message(ctx, inp.conversation_id, inp.message_id))
