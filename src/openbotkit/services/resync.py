"""Change-aware sync of a file into a dataset: skip an unchanged file, re-embed only new chunks.

Each attachment remembers the content hash and settings its records were made from. The worker
(ingestion/worker.py) plans with `plan_diff` outside any transaction, embeds what is new, then
`apply` writes the whole change in the job's final transaction, re-planning against the records
as they are by then, so a concurrent edit can never make it delete or duplicate the wrong rows.
A dry run (`preview`) computes the same plan without embedding or writing anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update

from openbotkit.errors import InvalidInput, NotFound, Problem
from openbotkit.ids import now_ms
from openbotkit.ingestion.chunking import Chunk, chunk_sections
from openbotkit.ingestion.diff import Change, Existing, Plan, Wanted, plan_diff
from openbotkit.ingestion.parsers import ParseLimits, parse
from openbotkit.retrieval.embedders import Embedder, Vectors
from openbotkit.services import file_content, files, records
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Dataset, DatasetFile, File, Record, RecordVector

# Bump when parsing or chunking changes what records a file makes: every file re-chunks once.
PIPELINE_VERSION = 2  # 2: JSON as an outline (each key once), not a path per leaf
DELETE_BATCH = 500


def source_of(file_id: str) -> str:
    """The `source` of every record made from a file."""
    return f"file:///{file_id}"


def settings_fingerprint(file: File, dataset: Dataset, embedder: Embedder) -> str:
    """A digest of everything besides the content that shapes a file's records."""
    parts = [
        PIPELINE_VERSION,
        embedder.model_id,
        dataset.record_max_tokens,
        dataset.separators,
        file.name,
        file.content_type,
    ]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def wanted_records(file_id: str, file_name: str | None, chunks: Sequence[Chunk]) -> list[Wanted]:
    """The records a file's chunks should become, with the meta every file record carries."""
    return [Wanted(c.text, {"fileId": file_id, "fileName": file_name, **c.meta}) for c in chunks]


def chunk_file(
    data: bytes, file: File, dataset: Dataset, embedder: Embedder, limits: ParseLimits
) -> list[Chunk]:
    sections = parse(data, file.content_type, file.name, limits, field="/fileId")
    return chunk_sections(
        sections, embedder, max_tokens=dataset.record_max_tokens, separators=dataset.separators
    )


def existing_records(ctx: Ctx, dataset_id: str, file_id: str, model_id: str) -> list[Existing]:
    """The records an earlier sync made from the file, in document order. A record is reusable
    only with a vector from the current embedder (after a change of model it is re-embedded)."""
    rows = ctx.session.execute(
        select(Record.id, Record.text, Record.meta, Record.created_at, RecordVector.model_id)
        .outerjoin(RecordVector, RecordVector.record_id == Record.id)
        .where(
            Record.account_id == ctx.account_id,
            Record.dataset_id == dataset_id,
            Record.source == source_of(file_id),
        )
    ).all()

    def position(row: Any) -> tuple[float, int, str]:
        chunk = (row.meta or {}).get("chunk")
        return (chunk if isinstance(chunk, int) else float("inf"), row.created_at, row.id)

    return [
        Existing(row.id, row.text, row.meta, reusable=row.model_id == model_id)
        for row in sorted(rows, key=position)
    ]


def record_count(ctx: Ctx, dataset_id: str, file_id: str) -> int:
    return int(
        ctx.session.scalar(
            select(func.count())
            .select_from(Record)
            .where(
                Record.account_id == ctx.account_id,
                Record.dataset_id == dataset_id,
                Record.source == source_of(file_id),
            )
        )
        or 0
    )


def is_unchanged(ctx: Ctx, link: DatasetFile, sha256: str | None, fingerprint: str) -> bool:
    """True when the records were made from this very content with these settings and are all
    still there (records deleted by hand since are made again)."""
    return (
        sha256 is not None
        and link.synced_sha256 == sha256
        and link.synced_settings == fingerprint
        and link.synced_records == record_count(ctx, link.dataset_id, link.file_id)
    )


def mark_synced(link: DatasetFile, sha256: str, fingerprint: str, count: int) -> None:
    link.synced_sha256, link.synced_settings, link.synced_records = sha256, fingerprint, count
    link.synced_at = now_ms()


def lock_attachment(ctx: Ctx, dataset_id: str, file_id: str) -> DatasetFile | None:
    """Hold the attachment's row until the transaction ends, and read it as it is now.

    Two syncs of one file into one dataset (a re-sync queued while the first still runs, taken
    by another worker) must not plan beside each other: each would see none of the other's new
    records and both would add them. With the row held, the second waits for the first to
    commit and then plans against its records. (SQLite renders no FOR UPDATE: its write lock
    already runs write transactions one at a time.)"""
    return ctx.session.scalar(
        select(DatasetFile)
        .where(DatasetFile.dataset_id == dataset_id, DatasetFile.file_id == file_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def apply(
    ctx: Ctx,
    dataset: Dataset,
    file_id: str,
    wanted: Sequence[Wanted],
    vectors: Mapping[str, Vectors],
) -> Plan:
    """Make the dataset's records of the file exactly `wanted`, in the caller's transaction.

    Syncs of the same attachment run this one after the other (`lock_attachment`). Records
    whose text is wanted keep their id and vector (their meta follows the chunk); the rest are
    deleted; new chunks are added with `vectors` (text -> vector, embedded beforehand).
    A text missing from `vectors` (a record vanished since planning) is embedded here.
    """
    embedder = ctx.runtime.embedder
    lock_attachment(ctx, dataset.id, file_id)
    plan = plan_diff(existing_records(ctx, dataset.id, file_id, embedder.model_id), wanted)
    gone = [rec.id for rec in plan.remove]
    for start in range(0, len(gone), DELETE_BATCH):
        # Their vectors and full-text entries go with them (cascade, trigger).
        ctx.session.execute(delete(Record).where(Record.id.in_(gone[start : start + DELETE_BATCH])))
    moved = [
        {"rid": rec.id, "new_meta": want.meta, "now": now_ms()}
        for rec, want in plan.keep
        if rec.meta != want.meta
    ]
    if moved:
        # By id (the table's primary key is the integer `key`, which the plan does not carry).
        table = Record.metadata.tables[Record.__tablename__]
        ctx.session.execute(
            update(table)
            .where(table.c.id == bindparam("rid"))
            .values(meta=bindparam("new_meta"), updated_at=bindparam("now")),
            moved,
        )
    if gone or moved:
        ctx.runtime.index.touch(ctx.session, dataset.id)
    if plan.add:
        import numpy as np  # only where vectors are put together: plain reads never load it

        missing = sorted({w.text for w in plan.add if w.text not in vectors})
        every = {**vectors}
        if missing:
            every.update(zip(missing, embedder.embed(missing), strict=True))
        matrix = np.vstack([every[w.text] for w in plan.add])
        items = [{"text": w.text, "source": source_of(file_id), "meta": w.meta} for w in plan.add]
        records.create_many(ctx, dataset, items, matrix)
    ctx.session.flush()
    return plan


# -- dry run ---------------------------------------------------------------------------------


@dataclass
class Diff:
    """What a sync would do to one dataset's records of a file."""

    dataset_id: str
    file_id: str
    kept: int = 0
    added: int = 0
    removed: int = 0
    unchanged: bool = False
    changed: list[Change] = field(default_factory=list)


def preview(ctx: Ctx, link: DatasetFile) -> Diff:
    """The plan a sync of this attachment would carry out now: parsed and chunked, never
    embedded or written. A file from a URL is asked for (conditionally), not stored."""
    file = files.get(ctx, link.file_id)
    dataset = ctx.session.get(Dataset, link.dataset_id)
    if dataset is None:  # pragma: no cover - the attachment cascades with its dataset
        raise NotFound(f"dataset {link.dataset_id} not found")
    data = file_content.current_bytes(ctx, file)
    if data is None:
        raise InvalidInput(
            f"file {file.id} has no content yet: upload it first",
            details=[Problem("/fileId", "content", "no content")],
        )
    embedder = ctx.runtime.embedder
    fingerprint = settings_fingerprint(file, dataset, embedder)
    if is_unchanged(ctx, link, hashlib.sha256(data).hexdigest(), fingerprint):
        return Diff(dataset.id, file.id, kept=link.synced_records or 0, unchanged=True)
    limits = ParseLimits.from_settings(ctx.settings)
    wanted = wanted_records(file.id, file.name, chunk_file(data, file, dataset, embedder, limits))
    plan = plan_diff(existing_records(ctx, dataset.id, file.id, embedder.model_id), wanted)
    return Diff(
        dataset.id,
        file.id,
        kept=len(plan.keep),
        added=len(plan.add),
        removed=len(plan.remove),
        changed=plan.changed,
    )
