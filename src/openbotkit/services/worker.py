"""The worker: runs sync jobs through their stages (fetch, parse, chunk, embed, index).

Everything slow happens outside write transactions; the records are replaced in one final
transaction that also marks the job done, so a search never sees a half-synced file and a
worker killed at any moment leaves nothing half-written: its job is redone by the next worker.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from openbotkit.errors import InvalidInput, ObkError
from openbotkit.ids import new_id, now_ms
from openbotkit.ingestion import jobs
from openbotkit.ingestion.chunking import chunk_sections
from openbotkit.ingestion.parsers import parse
from openbotkit.runtime import Runtime
from openbotkit.services import records
from openbotkit.services.context import Ctx
from openbotkit.store import Store
from openbotkit.store.tables import Dataset, DatasetFile, File, Job

log = logging.getLogger("openbotkit.worker")
EMBED_BATCH = 64


class JobLost(Exception):
    """Another worker took the job over (this one's lease ran out)."""


class Permanent(Exception):
    """A failure that retrying cannot fix (the file is gone, unreadable, detached)."""


@dataclass
class Loaded:
    data: bytes
    file_name: str | None
    content_type: str | None
    record_max_tokens: int | None
    separators: str | None


class Worker:
    def __init__(self, runtime: Runtime, worker_id: str | None = None) -> None:
        self.runtime = runtime
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self.lease_ms = int(runtime.settings.job_lease_s * 1000)

    def run_once(self) -> Job | None:
        """Claim and run one job; None when there is nothing to do."""
        with self.runtime.store.session() as session:
            job = jobs.claim_next_job(session, self.worker_id, now_ms(), self.lease_ms)
            if job is None:
                return None
            session.expunge(job)
        log.info("job %s: sync file %s into dataset %s", job.id, job.file_id, job.dataset_id)
        try:
            with self._lease_kept(job):
                count = self._sync(job)
            log.info("job %s: %d records", job.id, count)
        except JobLost:
            log.warning("job %s was taken over by another worker", job.id)
        except (Permanent, InvalidInput) as exc:
            self._fail(job, str(exc), retry=False)
        except ObkError as exc:
            self._fail(job, exc.message, retry=True)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self._fail(job, f"{type(exc).__name__}: {exc}", retry=True)
        with self.runtime.store.session(write=False) as session:
            return session.get(Job, job.id)

    def run(self, stop: threading.Event, poll_s: float = 1.0) -> None:
        """Work until `stop` is set, sleeping `poll_s` when the queue is empty."""
        while not stop.is_set():
            try:
                job = self.run_once()
            except Exception:  # the database may be briefly unavailable; keep the worker up
                log.exception("worker loop error")
                job = None
            if job is None:
                stop.wait(poll_s)

    def _fail(self, job: Job, error: str, *, retry: bool) -> None:
        with self.runtime.store.session() as session:
            if jobs.fail(session, job, self.worker_id, error, retry=retry) is None:
                log.warning("job %s: not failed, another worker holds it now", job.id)

    def _progress(self, job: Job, stage: str, done: int = 0, total: int = 0) -> None:
        with self.runtime.store.session() as session:
            if not jobs.progress(session, job, self.worker_id, stage, done, total, self.lease_ms):
                raise JobLost(job.id)

    @contextmanager
    def _lease_kept(self, job: Job) -> Iterator[None]:
        """Renew the job's lease every third of it while a stage runs (a big PDF's parse, one
        slow embedding batch), so a live worker never loses a job it is still running."""
        done = threading.Event()

        def renew() -> None:
            while not done.wait(self.lease_ms / 3000):
                try:
                    with self.runtime.store.session() as session:
                        if not jobs.progress(
                            session, job, self.worker_id, None, 0, 0, self.lease_ms
                        ):
                            return  # taken over: the next _progress raises JobLost
                except Exception:  # a busy database: try again at the next beat
                    log.warning("job %s: could not renew the lease", job.id, exc_info=True)

        beat = threading.Thread(target=renew, name=f"obk-lease-{job.id}", daemon=True)
        beat.start()
        try:
            yield
        finally:
            done.set()
            beat.join()

    def _load(self, job: Job) -> Loaded:
        with self.runtime.store.session(write=False) as session:
            file = session.get(File, job.file_id)
            dataset = session.get(Dataset, job.dataset_id)
            attached = session.get(DatasetFile, (job.dataset_id, job.file_id))
            if file is None or dataset is None or file.account_id != job.account_id:
                raise Permanent("the file or the dataset no longer exists")
            if attached is None:
                raise Permanent("the file is no longer attached to the dataset")
            loaded = Loaded(
                b"", file.name, file.content_type, dataset.record_max_tokens, dataset.separators
            )
        path = self.runtime.blobs.path(job.file_id)
        if path is None:
            raise Permanent("the file has no content yet: upload it first")
        loaded.data = path.read_bytes()
        return loaded

    def _sync(self, job: Job) -> int:
        loaded = self._load(job)
        self._progress(job, "parse")
        sections = parse(loaded.data, loaded.content_type, loaded.file_name)
        self._progress(job, "chunk")
        embedder = self.runtime.embedder
        chunks = chunk_sections(
            sections, embedder, max_tokens=loaded.record_max_tokens, separators=loaded.separators
        )
        self._progress(job, "embed", 0, len(chunks))
        vectors = []
        for start in range(0, len(chunks), EMBED_BATCH):
            batch = chunks[start : start + EMBED_BATCH]
            vectors.append(embedder.embed([c.text for c in batch]))
            self._progress(job, "embed", start + len(batch), len(chunks))
        source = f"file:///{job.file_id}"
        items = [
            {
                "text": c.text,
                "source": source,
                "meta": {"fileId": job.file_id, "fileName": loaded.file_name, **c.meta},
            }
            for c in chunks
        ]
        matrix = np.vstack(vectors) if vectors else np.zeros((0, embedder.dimensions), np.float32)
        self._progress(job, "index", len(chunks), len(chunks))
        with self.runtime.store.session() as session:
            # Fenced: only the attempt that holds the job may replace its records.
            if not jobs.finish(session, job, self.worker_id, len(items)):
                raise JobLost(job.id)
            dataset = session.get(Dataset, job.dataset_id)
            if dataset is None:
                raise Permanent("the dataset no longer exists")
            ctx = Ctx(self.runtime, session, job.account_id)
            records.delete_by_source(ctx, dataset, source)
            if items:
                records.create_many(ctx, dataset, items, matrix)
        return len(items)


def wait_for(store: Store, job_ids: list[str], timeout_s: float = 600) -> list[Job]:
    """Poll until every job has finished (succeeded or failed)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with store.session(write=False) as session:
            found = [session.get(Job, j) for j in job_ids]
        done = [j for j in found if j is not None]
        if all(j.status in ("succeeded", "failed") for j in done) or time.monotonic() > deadline:
            return done
        time.sleep(0.2)
