"""Conversation sessions: a token that reaches one conversation alone, for a limited time.

What ChatBotKit gives its widgets (`POST /conversation/{id}/session/create` -> `{token,
expiresAt}`): a page's public key starts a conversation with its bot and opens a session for
it; from then on the page talks to that conversation with the session token, which reaches
nothing else (services/keys.py says what it may call). Visitors sharing one public key thus
never reach each other's conversations: a public key opens a conversation's first session only,
so knowing a conversation's id is not enough either.

A session acts for the key that opened it: that key's budget pays for its completions, and the
key's revocation or expiry ends it. Only a SHA-256 of the token is kept; the token is shown once.
"""

from __future__ import annotations

import secrets as pysecrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openbotkit.access import Effect, Key, token_hash
from openbotkit.errors import ScopeMissing
from openbotkit.ids import new_id, now_ms
from openbotkit.services import conversations
from openbotkit.services.context import Ctx
from openbotkit.store.tables import ConversationSession, Secret

SESSION_PREFIX = "obks_"
DEFAULT_SESSION_S = 3_600
MAX_SESSION_S = 86_400


def create(ctx: Ctx, conversation_ref: str, duration_s: int | None) -> tuple[int, str]:
    """Open a session of the caller's conversation; returns its expiry (ms) and its token.

    It ends after `duration_s` seconds (default an hour), or when the opening key does.
    """
    conversation = conversations.get(ctx, conversation_ref)
    key = ctx.key
    now = now_ms()
    expires_at = now + (duration_s or DEFAULT_SESSION_S) * 1000
    if key is not None and key.expires_at is not None:
        expires_at = min(expires_at, key.expires_at)
    claim = None
    if key is not None and key.public:
        taken = ctx.session.scalar(
            select(ConversationSession.id)
            .where(ConversationSession.conversation_id == conversation.id)
            .limit(1)
        )
        if taken is not None:
            raise _taken(conversation.id, key)
        claim = conversation.id  # unique: of two racing first sessions, one is refused
    token = SESSION_PREFIX + pysecrets.token_urlsafe(32)
    row = ConversationSession(
        id=new_id(),
        account_id=ctx.account_id,
        conversation_id=conversation.id,
        secret_id=key.id if key is not None else None,
        token_hash=token_hash(token),
        claim=claim,
        created_at=now,
        expires_at=expires_at,
    )
    try:
        with ctx.session.begin_nested():
            ctx.session.add(row)
    except IntegrityError:
        assert key is not None
        raise _taken(conversation.id, key) from None
    return expires_at, token


def _taken(conversation_id: str, key: Key) -> ScopeMissing:
    return ScopeMissing(
        f"conversation {conversation_id} already has a session; a key limited to bots or"
        f" datasets without the destructive scope opens only the first one (start a new"
        f" conversation instead; this key has {key.describe()})"
    )


def key_for_session(session: Session, digest: str) -> Key | None:
    """The key of the session whose token hashes to `digest`, or None (unknown, or the key
    that opened it is revoked). Its expiry is the session's or the opening key's, earlier."""
    found = session.execute(
        select(ConversationSession, Secret)
        .outerjoin(Secret, Secret.id == ConversationSession.secret_id)
        .where(ConversationSession.token_hash == digest)
    ).first()
    if found is None:
        return None
    row, opener = found
    if row.secret_id is not None and (opener is None or opener.revoked_at is not None):
        return None
    expires_at = row.expires_at
    if opener is not None and opener.expires_at is not None:
        expires_at = min(expires_at, opener.expires_at)
    return Key(
        # Usage and budget are the opening key's (the CLI's sessions have none: their own id).
        id=opener.id if opener is not None else row.id,
        account_id=row.account_id,
        scope=Effect.WRITE,
        bots=frozenset(),
        datasets=frozenset(),
        budget_tokens=opener.budget_tokens if opener is not None else None,
        expires_at=expires_at,
        conversation=row.conversation_id,
    )
