"""The worker: runs sync jobs through their stages (fetch, parse, chunk, embed, index),
answers chat channels' updates (services/channel_events.py), and polls the channels that are
polled (services/channel_polls.py: Telegram without a webhook).

Everything slow happens outside write transactions; the records change in one final
transaction that also marks the job done, so a search never sees a half-synced file and a
worker killed at any moment leaves nothing half-written: its job is redone by the next worker.

A sync does only what changed (services/resync.py): a file whose content and settings are as
last synced finishes at once as `unchanged`; otherwise only chunks no record has yet are
embedded, records of unchanged chunks keep their ids and vectors, and vanished ones go.
A file that came from a URL is fetched again first, conditionally (a 304 costs one request).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from openbotkit.channels import ChannelError
from openbotkit.errors import InvalidInput, ObkError
from openbotkit.ids import new_id, now_ms
from openbotkit.ingestion import jobs
from openbotkit.ingestion.blobs import read_all
from openbotkit.ingestion.chunking import chunk_sections
from openbotkit.ingestion.diff import plan_diff
from openbotkit.ingestion.parsers import ParseLimits, parse
from openbotkit.retrieval.embedders import Vectors
from openbotkit.runtime import Runtime
from openbotkit.services import channel_events, channel_updates, file_content, resync, retention
from openbotkit.services.channel_polls import Pollers
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store import Store
from openbotkit.store.tables import Dataset, DatasetFile, File, Job

log = logging.getLogger("openbotkit.worker")
EMBED_BATCH = 64
PRUNE_EVERY_S = 3600.0


class JobLost(Exception):
    """Another worker took the job over (this one's lease ran out)."""


class Permanent(Exception):
    """A failure that retrying cannot fix (the file is gone, unreadable, detached)."""


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
        if job.kind == jobs.CHANNEL_ANSWER:
            self._answer(job)
            with self.runtime.store.session(write=False) as session:
                return session.get(Job, job.id)
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
        """Work until `stop` is set; when the queue is empty, wait up to `poll_s` for a new job
        (a notification wakes the worker at once on PostgreSQL). Old jobs and executions are
        pruned at start and then hourly."""
        next_prune = time.monotonic()
        # Bodies staged by processes that have ended (a worker killed mid-fetch) go now.
        self.runtime.blobs.clean_staging()
        signal = jobs.listen(self.runtime.store)
        # Chat channels that are polled (Telegram without a webhook), leased across workers.
        from openbotkit.services import telegram  # httpx: only for workers that poll

        pollers = Pollers(self.runtime, self.worker_id, self.lease_ms, [telegram.CHANNEL])
        halt = threading.Event()
        polling = threading.Thread(
            target=pollers.run, args=(halt,), name="obk-channel-pollers", daemon=True
        )
        polling.start()
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_prune:
                        next_prune = time.monotonic() + PRUNE_EVERY_S
                        self.prune()
                    job = self.run_once()
                except Exception:  # the database may be briefly unavailable; keep the worker up
                    log.exception("worker loop error")
                    job = None
                if job is None and not stop.is_set():
                    signal.wait(stop, poll_s)
        finally:
            signal.close()
            halt.set()
            polling.join(timeout=10)

    def prune(self) -> retention.Pruned:
        """Apply OBK_RETENTION_DAYS to finished jobs and connector executions."""
        pruned = retention.prune(self.runtime.store, self.runtime.settings.retention_days)
        if pruned.jobs or pruned.executions:
            log.info(
                "pruned %d finished job(s) and %d execution(s) older than %g days",
                pruned.jobs,
                pruned.executions,
                self.runtime.settings.retention_days,
                extra={"jobs": pruned.jobs, "executions": pruned.executions},
            )
        return pruned

    def _answer(self, job: Job) -> None:
        """Answer a chat channel's update (services/channel_events.py). A failure that cannot
        be retried, and the last failed attempt, are reported on the integration."""

        def finish(session: Session) -> None:
            if not jobs.finish(session, job, self.worker_id, 0):
                raise JobLost(job.id)

        try:
            with self._lease_kept(job):
                channel_events.answer(self.runtime, job, finish)
        except JobLost:
            log.warning("job %s was taken over by another worker", job.id)
        except channel_updates.Undeliverable as exc:
            self._report(job, str(exc))
            self._fail(job, str(exc), retry=False)
        except Exception as exc:
            log.warning("job %s: answer failed, will retry: %s", job.id, exc)
            error = str(exc) if isinstance(exc, ObkError | ChannelError) else repr(exc)
            if job.attempts >= job.max_attempts:
                self._report(job, f"gave up after {job.attempts} attempts: {error}")
            self._fail(job, error, retry=True)

    def _report(self, job: Job, error: str) -> None:
        with self.runtime.store.session(write=False) as session:
            integration_id = channel_updates.integration_of(session, job)
        if integration_id is not None:
            channel_updates.report(self.runtime, integration_id, error)

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

    def _check(self, session: Session, job: Job) -> tuple[File, Dataset, DatasetFile]:
        """The job's file, dataset and attachment, or a permanent failure saying which is gone."""
        file = session.get(File, job.file_id)
        dataset = session.get(Dataset, job.dataset_id)
        link = session.get(DatasetFile, (job.dataset_id, job.file_id))
        if file is None or dataset is None or file.account_id != job.account_id:
            raise Permanent("the file or the dataset no longer exists")
        if link is None:
            raise Permanent("the file is no longer attached to the dataset")
        return file, dataset, link

    def _finish(
        self,
        session: Session,
        job: Job,
        records: int,
        *,
        kept: int = 0,
        added: int = 0,
        removed: int = 0,
        unchanged: bool = False,
    ) -> None:
        """Mark the job done in its final transaction, fenced: only the attempt that holds the
        job may finish it (else JobLost, and the transaction with its record changes is undone)."""
        done = jobs.finish(
            session,
            job,
            self.worker_id,
            records,
            kept=kept,
            added=added,
            removed=removed,
            unchanged=unchanged,
        )
        if not done:
            raise JobLost(job.id)

    def _sync(self, job: Job) -> int:
        scope = AccountScope(self.runtime, job.account_id)
        with self.runtime.store.session(write=False) as session:
            file, _, _ = self._check(session, job)
            # Jobs queued together (one file, several datasets) share one fetch.
            refetch = file.source_url is not None and (file.fetched_at or 0) < job.created_at
        if refetch:
            file_content.refetch(scope, job.file_id)
        embedder = self.runtime.embedder
        with self.runtime.store.session() as session:
            file, dataset, link = self._check(session, job)
            fingerprint = resync.settings_fingerprint(file, dataset, embedder)
            ctx = Ctx(self.runtime, session, job.account_id)
            # Also completes an upload made straight to the object store (records its size).
            found = file_content.content(ctx, file.id)[1]
            if resync.is_unchanged(ctx, link, file.sha256, fingerprint):
                count = link.synced_records or 0
                self._finish(session, job, count, kept=count, unchanged=True)
                return count
            session.expunge(file)
            session.expunge(dataset)
        reader = self.runtime.blobs.open(job.file_id) if found is not None else None
        if reader is None:
            raise Permanent("the file has no content yet: upload it first")
        data = read_all(reader)
        sha256 = hashlib.sha256(data).hexdigest()
        if file.sha256 is None:  # uploaded straight to the object store: first read here
            with scope.transaction() as ctx:
                file_content.note_sha256(ctx, job.file_id, sha256, len(data), file.updated_at)
        self._progress(job, "parse")
        limits = ParseLimits.from_settings(self.runtime.settings)
        sections = parse(data, file.content_type, file.name, limits, field="/fileId")
        self._progress(job, "chunk")
        chunks = chunk_sections(
            sections, embedder, max_tokens=dataset.record_max_tokens, separators=dataset.separators
        )
        wanted = resync.wanted_records(job.file_id, file.name, chunks)
        with scope.transaction(write=False) as ctx:
            old = resync.existing_records(ctx, job.dataset_id, job.file_id, embedder.model_id)
        # Only what no record has yet is embedded; the final transaction re-plans.
        texts = list(dict.fromkeys(w.text for w in plan_diff(old, wanted).add))
        vectors: dict[str, Vectors] = {}
        self._progress(job, "embed", 0, len(texts))
        for start in range(0, len(texts), EMBED_BATCH):
            batch = texts[start : start + EMBED_BATCH]
            vectors.update(zip(batch, embedder.embed(batch), strict=True))
            self._progress(job, "embed", start + len(batch), len(texts))
        self._progress(job, "index", len(texts), len(texts))
        with self.runtime.store.session() as session:
            _, dataset, link = self._check(session, job)
            ctx = Ctx(self.runtime, session, job.account_id)
            plan = resync.apply(ctx, dataset, job.file_id, wanted, vectors)
            resync.mark_synced(link, sha256, fingerprint, len(wanted))
            self._finish(
                session,
                job,
                len(wanted),
                kept=len(plan.keep),
                added=len(plan.add),
                removed=len(plan.remove),
            )
        return len(wanted)


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
