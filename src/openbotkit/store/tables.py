"""ORM classes: one per stored resource. Column names match the API's fields in snake_case.

No rules live here: services validate and scope, the store only keeps rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from openbotkit.ids import now_ms


class Base(DeclarativeBase):
    pass


def _fk(target: str) -> Any:
    return ForeignKey(target, ondelete="CASCADE")


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(191), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Secret(Base):
    """An API secret. Only a SHA-256 of the token is kept; the token is shown once.

    Its limits are fixed when it is created: the highest effect class it may run (`scope`),
    the bots and datasets it may reach (both null: every resource of the account), a token
    budget for its whole life and an expiry.
    """

    __tablename__ = "secrets"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(191))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)
    scope: Mapped[str] = mapped_column(String(16), default="destructive")
    bots: Mapped[list[str] | None] = mapped_column(JSON)
    datasets: Mapped[list[str] | None] = mapped_column(JSON)
    budget_tokens: Mapped[int | None] = mapped_column(BigInteger)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # `key`: an API secret. `console`: a console session, made by redeeming a sign-in link;
    # it expires and sign-out revokes it. `signin`: a one-time, short-lived sign-in link, which
    # authenticates nothing: it can only be traded for a console session (services/consoles.py).
    kind: Mapped[str] = mapped_column(String(16), default="key", server_default="key")


class _Owned:
    """Columns every account-owned resource has."""

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"))
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    meta: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Bot(_Owned, Base):
    __tablename__ = "bots"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_bots_account_created", "account_id", "created_at", "id"),
    )

    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str | None] = mapped_column(Text)
    backstory: Mapped[str | None] = mapped_column(Text)
    dataset_id: Mapped[str | None] = mapped_column(String(40))
    skillset_id: Mapped[str | None] = mapped_column(String(40))
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    privacy: Mapped[bool | None] = mapped_column(Boolean)
    moderation: Mapped[bool | None] = mapped_column(Boolean)
    visibility: Mapped[str | None] = mapped_column(String(16))


class Conversation(_Owned, Base):
    __tablename__ = "conversations"
    __table_args__ = (Index("ix_conversations_account_created", "account_id", "created_at", "id"),)

    bot_id: Mapped[str | None] = mapped_column(String(40))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    contact_id: Mapped[str | None] = mapped_column(String(40))
    task_id: Mapped[str | None] = mapped_column(String(40))
    space_id: Mapped[str | None] = mapped_column(String(40))
    model: Mapped[str | None] = mapped_column(Text)
    backstory: Mapped[str | None] = mapped_column(Text)
    dataset_id: Mapped[str | None] = mapped_column(String(40))
    skillset_id: Mapped[str | None] = mapped_column(String(40))
    privacy: Mapped[bool | None] = mapped_column(Boolean)
    moderation: Mapped[bool | None] = mapped_column(Boolean)
    expires_at: Mapped[int | None] = mapped_column(BigInteger)


class ConversationSession(Base):
    """A token that reaches one conversation alone, for a limited time (ChatBotKit's
    conversation sessions: what a widget holds). Only a SHA-256 of the token is kept.

    `secret_id` is the key that made it: its budget pays for the session's completions and its
    revocation or expiry ends the session too. `claim` is the conversation's id when a public
    key made the session: unique, so a public key opens a conversation's first session only.
    """

    __tablename__ = "conversation_sessions"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"))
    conversation_id: Mapped[str] = mapped_column(String(40), _fk("conversations.id"), index=True)
    secret_id: Mapped[str | None] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    claim: Mapped[str | None] = mapped_column(String(40), unique=True)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class Message(_Owned, Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation_created", "conversation_id", "created_at", "id"),
    )

    conversation_id: Mapped[str] = mapped_column(String(40), _fk("conversations.id"))
    type: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    entities: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)


class Dataset(_Owned, Base):
    __tablename__ = "datasets"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_datasets_account_created", "account_id", "created_at", "id"),
    )

    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    reranker: Mapped[str | None] = mapped_column(Text)
    record_max_tokens: Mapped[int | None] = mapped_column(Integer)
    search_min_score: Mapped[float | None] = mapped_column(Float)
    search_max_records: Mapped[int | None] = mapped_column(Integer)
    search_max_tokens: Mapped[int | None] = mapped_column(Integer)
    match_instruction: Mapped[str | None] = mapped_column(Text)
    mismatch_instruction: Mapped[str | None] = mapped_column(Text)
    separators: Mapped[str | None] = mapped_column(Text)
    visibility: Mapped[str | None] = mapped_column(String(16))
    # Bumped in the same transaction as any change to the dataset's records, so every process
    # can tell that its in-memory copy of the vectors is stale.
    index_version: Mapped[int] = mapped_column(BigInteger, default=0)


class Record(_Owned, Base):
    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_dataset_created", "dataset_id", "created_at", "id"),
        Index("ix_records_dataset_source", "dataset_id", "source"),
        # Covers a dataset's lexical statistics: its record count and total length.
        Index("ix_records_dataset_tokens", "dataset_id", "tokens"),
        # fetch_usage counts an account's records.
        Index("ix_records_account", "account_id"),
        {"sqlite_autoincrement": True},
    )

    # The stable integer key the full-text index and the vector cache use: an explicit
    # INTEGER PRIMARY KEY, never renumbered by VACUUM (as an implicit rowid may be) and, with
    # AUTOINCREMENT, never reused after a delete.
    key: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    id: Mapped[str] = mapped_column(String(40), unique=True)
    dataset_id: Mapped[str] = mapped_column(String(40), _fk("datasets.id"))
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str | None] = mapped_column(Text)
    # Words in `text` (retrieval.lexical.count_words): BM25's document length.
    tokens: Mapped[int] = mapped_column(Integer, default=0)


class RecordVector(Base):
    """A record's embedding: float32 bytes, with the model that made it."""

    __tablename__ = "record_vectors"
    # Covers the index cache's refresh: rows stamped after a version, and their count.
    __table_args__ = (Index("ix_record_vectors_dataset", "dataset_id", "model_id", "version"),)

    record_id: Mapped[str] = mapped_column(String(40), _fk("records.id"), primary_key=True)
    # The record's stable key (records.key): what the in-memory cache identifies rows by.
    record_key: Mapped[int] = mapped_column(BigInteger)
    dataset_id: Mapped[str] = mapped_column(String(40), _fk("datasets.id"))
    model_id: Mapped[str] = mapped_column(String(128))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    # The dataset's index_version of the write that stored this vector: tells a process's
    # cached copy which rows changed since it last looked.
    version: Mapped[int] = mapped_column(BigInteger, default=0)


class File(_Owned, Base):
    __tablename__ = "files"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_files_account_created", "account_id", "created_at", "id"),
    )

    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    visibility: Mapped[str | None] = mapped_column(String(16))
    # Content, set by upload (issue: files and ingestion).
    content_type: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    # Set when the content was fetched from a URL: a sync fetches it again, conditionally
    # (If-None-Match / If-Modified-Since), so an unchanged remote document costs one request.
    source_url: Mapped[str | None] = mapped_column(Text)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(String(64))
    fetched_at: Mapped[int | None] = mapped_column(BigInteger)


class DatasetFile(Base):
    """A file attached to a dataset as a source of its records."""

    __tablename__ = "dataset_files"
    __table_args__ = (Index("ix_dataset_files_dataset_created", "dataset_id", "created_at"),)

    dataset_id: Mapped[str] = mapped_column(String(40), _fk("datasets.id"), primary_key=True)
    file_id: Mapped[str] = mapped_column(String(40), _fk("files.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"))
    type: Mapped[str] = mapped_column(String(16), default="source")
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    # What the dataset's records were last synced from: the content's SHA-256, a fingerprint of
    # the settings that shape the records (embedder, chunking, file name and type) and how many
    # records that made. All three unchanged: a sync has nothing to do.
    synced_sha256: Mapped[str | None] = mapped_column(String(64))
    synced_settings: Mapped[str | None] = mapped_column(String(64))
    synced_records: Mapped[int | None] = mapped_column(Integer)
    synced_at: Mapped[int | None] = mapped_column(BigInteger)


class Skillset(_Owned, Base):
    """A named set of abilities a bot (or a conversation) can use."""

    __tablename__ = "skillsets"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_skillsets_account_created", "account_id", "created_at", "id"),
    )

    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str | None] = mapped_column(String(16))
    visibility: Mapped[str | None] = mapped_column(String(16))


class Ability(_Owned, Base):
    """One thing a bot can do: an instruction (with an action block) and its linked resources.

    Deleted with its skillset (the foreign key cascades; the service also deletes them in the
    same transaction, since SQLite enforces foreign keys only when asked)."""

    __tablename__ = "abilities"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_abilities_skillset_created", "skillset_id", "created_at", "id"),
    )

    skillset_id: Mapped[str] = mapped_column(String(40), _fk("skillsets.id"))
    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    instruction: Mapped[str | None] = mapped_column(Text)
    linked_bot_id: Mapped[str | None] = mapped_column(String(40))
    linked_secret_id: Mapped[str | None] = mapped_column(String(40))
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    state: Mapped[str | None] = mapped_column(String(16))


class AbilitySecret(_Owned, Base):
    """A credential an ability uses (ChatBotKit's `/secret`), not an API key (`Secret`).

    `value_encrypted` holds the value encrypted with the installation's secret key
    (services/vault.py); no output model has a field for it, so no surface reads it back."""

    __tablename__ = "ability_secrets"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_ability_secrets_account_created", "account_id", "created_at", "id"),
    )

    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(16))
    value_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    visibility: Mapped[str | None] = mapped_column(String(16))


class UsageEvent(Base):
    """A ledger of what an account used; inserts never contend with each other. A
    completion on a key with a budget first inserts a `reserved` row, which becomes its
    `tokens` charge when it ends (services/usage.py); `granted` rows are budget a key gave
    to keys it made. Only tokens, conversations and messages are the account's usage."""

    __tablename__ = "usage_events"
    __table_args__ = (
        Index("ix_usage_account_metric_created", "account_id", "metric", "created_at"),
        Index("ix_usage_secret_metric", "secret_id", "metric"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"))
    # The secret the use came through (null from the CLI and the Python API): a key's budget.
    secret_id: Mapped[str | None] = mapped_column(String(40))
    # tokens | conversations | messages | reserved | granted
    metric: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Execution(Base):
    """One connector run (success or failure), listed by `obk connector executions`."""

    __tablename__ = "executions"
    __table_args__ = (Index("ix_executions_created", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    action: Mapped[str] = mapped_column(String(64))
    effect: Mapped[str] = mapped_column(String(16))
    backend: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))  # ok | error
    error_code: Mapped[str | None] = mapped_column(String(32))
    duration_ms: Mapped[float] = mapped_column(Float)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class Job(Base):
    """A durable background job (a file sync into a dataset, an answer to a chat channel's
    update), claimed by one worker at a time.

    A worker holds a lease (`lease_until`) that it renews while it works; a job whose lease ran
    out (the worker died) is claimed again and redone from the start. Jobs write their results
    in one transaction at the end, so a redo never duplicates anything.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_after"),
        Index("ix_jobs_file", "account_id", "file_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"))
    kind: Mapped[str] = mapped_column(String(32))
    # A sync's file and dataset ("" for other kinds, whose subject is in `payload`).
    file_id: Mapped[str] = mapped_column(String(40))
    dataset_id: Mapped[str] = mapped_column(String(40))
    # What a job of another kind works on (an integration event: its row's id).
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))  # queued | running | succeeded | failed
    stage: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int | None] = mapped_column(Integer)
    # What the sync did to the file's records: kept (same text: id and vector kept), added
    # (embedded), removed; `unchanged` when the content had not changed and nothing was read.
    kept: Mapped[int | None] = mapped_column(Integer)
    added: Mapped[int | None] = mapped_column(Integer)
    removed: Mapped[int | None] = mapped_column(Integer)
    unchanged: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)
    finished_at: Mapped[int | None] = mapped_column(BigInteger)


class Contact(_Owned, Base):
    """A person the account's bots talk to, known by a fingerprint the caller (or a channel:
    `slack:T0123:U0456`) chooses. Its id is derived from the fingerprint (services/contacts
    `contact_id`), so the same person is the same contact on every path; a conversation's
    `contactId` names a contact of its account."""

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("account_id", "fingerprint"),
        Index("ix_contacts_account_created", "account_id", "created_at", "id"),
    )

    fingerprint: Mapped[str] = mapped_column(String(256))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    nick: Mapped[str | None] = mapped_column(Text)
    preferences: Mapped[str | None] = mapped_column(Text)
    verified_at: Mapped[int | None] = mapped_column(BigInteger)


class Integration(_Owned, Base):
    """A bot published on a chat channel (`kind`: slack, telegram, discord, whatsapp, email).

    `settings` holds the kind's readable fields (appId, phoneNumberId, ...); `secrets` its
    tokens and signing secrets, which no output ever returns, encrypted with the installation's
    key (vault.py): the channel needs the value itself (unlike API keys, of which a hash
    suffices).
    """

    __tablename__ = "integrations"
    __table_args__ = (
        UniqueConstraint("account_id", "alias"),
        Index("ix_integrations_account_kind_created", "account_id", "kind", "created_at", "id"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    alias: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    bot_id: Mapped[str | None] = mapped_column(String(40))
    blueprint_id: Mapped[str | None] = mapped_column(String(40))
    allow_from: Mapped[str | None] = mapped_column(Text)
    session_duration: Mapped[int | None] = mapped_column(BigInteger)
    contact_collection: Mapped[bool | None] = mapped_column(Boolean)
    settings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    secrets: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[int | None] = mapped_column(BigInteger)


class IntegrationEvent(Base):
    """One inbound update of a channel (a Slack event), stored before it is answered: the
    unique (integration, event id) pair is what makes a redelivered update a no-op. The answer
    is kept once generated, so a retried send repeats the message, not the generation."""

    __tablename__ = "integration_events"
    __table_args__ = (UniqueConstraint("integration_id", "event_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(40), _fk("accounts.id"))
    integration_id: Mapped[str] = mapped_column(String(40), _fk("integrations.id"))
    event_id: Mapped[str] = mapped_column(String(191))
    conversation_id: Mapped[str | None] = mapped_column(String(40))
    reply: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    # How many parts of a long reply the channel has accepted: a retry sends only the rest.
    sent_parts: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class IntegrationPoller(Base):
    """Who polls a channel that is polled rather than pushed to (Telegram's getUpdates): one
    worker at a time holds the lease, renewed while it polls and free once `lease_until` has
    passed (its worker died). `cursor` is where the next poll starts, stored in the transaction
    that stores the updates before it, so a restart neither loses nor repeats one."""

    __tablename__ = "integration_pollers"

    integration_id: Mapped[str] = mapped_column(
        String(40), _fk("integrations.id"), primary_key=True
    )
    holder: Mapped[str | None] = mapped_column(String(191))
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    cursor: Mapped[str | None] = mapped_column(String(191))
    updated_at: Mapped[int] = mapped_column(BigInteger, default=now_ms)


class IntegrationSession(Base):
    """A contact's current conversation on an integration, and when they last wrote: a
    message within the integration's sessionDuration of `last_message_at` continues it."""

    __tablename__ = "integration_sessions"

    integration_id: Mapped[str] = mapped_column(
        String(40), _fk("integrations.id"), primary_key=True
    )
    contact_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(40))
    last_message_at: Mapped[int] = mapped_column(BigInteger)
