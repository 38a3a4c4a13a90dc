"""Moving up: copy a whole installation (every account, secret, resource, vector, job and file
content) from its database and blob store into a fresh target, e.g. from the embedded SQLite
default to PostgreSQL + S3.

The source is read in one transaction (one consistent snapshot). File contents are copied first
and checked against their recorded SHA-256; then every row goes into the target database in one
transaction. If anything fails, that transaction rolls back and the contents already copied are
deleted again, so the target is left as empty as it was found. A target that is not empty is
refused: this is a move, not a merge.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import TYPE_CHECKING, cast

from sqlalchemy import Connection, select
from sqlalchemy.engine.url import make_url
from sqlalchemy.orm import Session

from openbotkit import backends
from openbotkit.errors import Conflict, InvalidInput, Problem
from openbotkit.ingestion.blobs import BlobStore, iter_chunks
from openbotkit.store import Store
from openbotkit.store.copy import Rows, Writer, copy_rows, require_empty
from openbotkit.store.tables import File

if TYPE_CHECKING:
    from openbotkit.retrieval.index import SearchIndex
    from openbotkit.runtime import Runtime

Progress = Callable[[str, int], None]


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


def _same_database(a: str, b: str) -> bool:
    return make_url(a).render_as_string(hide_password=False) == make_url(b).render_as_string(
        hide_password=False
    )


def copy_installation(
    runtime: Runtime,
    target_url: str,
    target_blobs: BlobStore | None,
    *,
    progress: Progress | None = None,
) -> CopyReport:
    """Copy everything of `runtime`'s store and blobs into `target_url` (migrated first) and
    `target_blobs`.

    `target_blobs` None keeps the file contents where they are (the target database then
    expects the same OBK_BLOB_URL).
    """
    source, source_blobs = runtime.store, runtime.blobs
    if not source.is_sqlite:
        raise InvalidInput(
            "obk db copy moves the embedded (SQLite) store up; to move a PostgreSQL database,"
            " use pg_dump and pg_restore",
            details=[Problem("/OBK_DATABASE_URL", "sqlite", "the source must be SQLite")],
        )
    if _same_database(source.url, target_url):
        raise InvalidInput(
            "--to names the database being copied; give a new, empty one",
            details=[Problem("/to", "different", "not the configured database")],
        )
    source.migrate()
    target = Store(target_url)
    try:
        target.migrate()
        with target.read_engine.connect() as conn:
            require_empty(conn, make_url(target_url).render_as_string(hide_password=True))
        if target_blobs is not None and next(iter(target_blobs.keys()), None) is not None:
            raise Conflict(
                "the target blob store is not empty: copying fills only a fresh one;"
                " point --to-blobs at a new, empty place"
            )
        report = CopyReport()
        written: list[str] = []
        with source.read_engine.connect() as src, src.begin():
            try:
                if target_blobs is not None:
                    _copy_contents(src, source_blobs, target_blobs, report, written, progress)
                # Vectors in another representation (pgvector) go in through that database's index.
                writers = {}
                if target.dialect != source.dialect:
                    index = backends.search_index(runtime.settings, target.dialect)
                    writers["record_vectors"] = _index_vectors(index)
                with target.write_engine.begin() as dst:
                    report.rows = copy_rows(src, dst, writers=writers, progress=progress)
            except BaseException:
                for key in written:
                    target_blobs.delete(key)  # type: ignore[union-attr]
                raise
        return report
    finally:
        target.dispose()


def _index_vectors(index: SearchIndex) -> Writer:
    """Vectors (float32 bytes in the embedded store) into `index`, grouped as it adds them."""

    import numpy as np

    def write(conn: Connection, rows: Rows) -> None:
        session = Session(bind=conn)
        key = itemgetter("dataset_id", "model_id")
        for (dataset_id, model_id), group in groupby(sorted(rows, key=key), key=key):
            batch = list(group)
            vectors = np.vstack(
                [np.frombuffer(cast(bytes, r["vector"]), dtype=np.float32) for r in batch]
            )
            ids = [str(r["record_id"]) for r in batch]
            index.add(session, str(dataset_id), ids, vectors, str(model_id))
        session.flush()

    return write


def _copy_contents(
    src: Connection,
    source_blobs: BlobStore,
    target_blobs: BlobStore,
    report: CopyReport,
    written: list[str],
    progress: Progress | None,
) -> None:
    for file_id, sha256 in src.execute(select(File.id, File.sha256).order_by(File.id)):
        reader = source_blobs.open(file_id)
        if reader is None:
            continue  # a file without content yet
        written.append(file_id)
        # Files over today's OBK_MAX_FILE_BYTES were allowed when they came: no limit here.
        stored = target_blobs.put_chunks(file_id, iter_chunks(reader), sys.maxsize)
        if sha256 and stored.sha256 != sha256:
            raise Conflict(
                f"the content of file {file_id} does not match its recorded SHA-256:"
                " the source blob store is damaged or changed during the copy"
            )
        report.files += 1
        report.bytes += stored.size
        if progress is not None:
            progress("file contents", report.files)
