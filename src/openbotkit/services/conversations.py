"""Conversations and their messages."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.services import crud, usage
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Bot, Contact, Conversation, Dataset, Message, Skillset

REFS = {"bot_id": Bot, "dataset_id": Dataset, "skillset_id": Skillset, "contact_id": Contact}


def create(
    ctx: Ctx, fields: dict[str, Any], messages: Sequence[dict[str, Any]] = ()
) -> Conversation:
    """Start a conversation, optionally seeded with messages (added in order)."""
    crud.resolve_refs(ctx, fields, REFS)
    conversation = crud.insert(ctx, Conversation, fields)
    usage.record(ctx, "conversations")
    for item in messages:
        add_message(ctx, conversation, item)
    return conversation


def get(ctx: Ctx, ref: str) -> Conversation:
    return crud.get_owned(ctx, Conversation, ref, field="conversationId")


def update(ctx: Ctx, ref: str, fields: dict[str, Any]) -> Conversation:
    conversation = get(ctx, ref)
    crud.resolve_refs(ctx, fields, REFS)
    crud.update(ctx, conversation, fields)
    return conversation


def delete(ctx: Ctx, ref: str) -> str:
    """Delete a conversation and all its messages."""
    conversation = get(ctx, ref)
    ctx.session.delete(conversation)
    ctx.session.flush()
    return conversation.id


def add_message(ctx: Ctx, conversation: Conversation, fields: dict[str, Any]) -> Message:
    """Append a message (no reply is generated) and count it."""
    message = crud.insert(ctx, Message, {"conversation_id": conversation.id, **fields})
    usage.record(ctx, "messages")
    return message


def get_message(ctx: Ctx, conversation_ref: str, message_id: str) -> Message:
    conversation = get(ctx, conversation_ref)
    message = ctx.session.scalar(
        select(Message).where(
            Message.account_id == ctx.account_id,
            Message.conversation_id == conversation.id,
            Message.id == message_id,
        )
    )
    if message is None:
        raise NotFound(
            f"message {message_id!r} not found in conversation {conversation.id}",
            details=[Problem("/messageId", "exists", "no such message in this conversation")],
        )
    return message


def update_message(
    ctx: Ctx, conversation_ref: str, message_id: str, fields: dict[str, Any]
) -> Message:
    message = get_message(ctx, conversation_ref, message_id)
    for required in ("type", "text"):
        if required in fields and fields[required] is None:
            raise InvalidInput(
                f"message {required} cannot be cleared",
                details=[Problem(f"/{required}", "required", "must not be null")],
            )
    crud.update(ctx, message, fields)
    return message


def delete_message(ctx: Ctx, conversation_ref: str, message_id: str) -> str:
    message = get_message(ctx, conversation_ref, message_id)
    ctx.session.delete(message)
    ctx.session.flush()
    return message.id
