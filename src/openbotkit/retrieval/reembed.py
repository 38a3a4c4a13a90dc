"""Re-embedding: after a change of embedder, give every record a vector from the current one.

Vectors of another model are invisible to dense search (they cannot be compared), so until this
runs only lexical search finds those records. Work goes dataset by dataset, in batches: each
batch is embedded outside a transaction, then written in a short one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import and_, or_, select

from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.index import SearchIndex
from openbotkit.store import Store
from openbotkit.store.tables import Record, RecordVector

BATCH = 64


def stale_records(store: Store, model_id: str, limit: int) -> list[tuple[str, str, str]]:
    """(record id, dataset id, text) of records whose vector is missing or of another model."""
    query = (
        select(Record.id, Record.dataset_id, Record.text)
        .outerjoin(RecordVector, RecordVector.record_id == Record.id)
        .where(or_(RecordVector.record_id.is_(None), and_(RecordVector.model_id != model_id)))
        .limit(limit)
    )
    with store.session(write=False) as session:
        return [(r[0], r[1], r[2]) for r in session.execute(query)]


def reembed(
    store: Store,
    embedder: Embedder,
    index: SearchIndex,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Re-embed every stale record; returns how many were done."""
    done = 0
    while batch := stale_records(store, embedder.model_id, BATCH):
        vectors = embedder.embed([text for _, _, text in batch])
        with store.session() as session:
            for (record_id, dataset_id, _), vector in zip(batch, vectors, strict=True):
                index.replace(session, dataset_id, record_id, vector, embedder.model_id)
        done += len(batch)
        if progress:
            progress(done)
    return done
