"""The durable job queue: a table, claimed atomically, leased while a worker runs a job.

Works across processes on SQLite (one UPDATE ... RETURNING under BEGIN IMMEDIATE) and on
PostgreSQL, where the row-picking subquery adds FOR UPDATE SKIP LOCKED so workers on several
machines never wait on each other's rows. An enqueue also wakes idle workers at once where the
database can (a NOTIFY on PostgreSQL, see store/wakeups.py); `listen` is how they wait.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from openbotkit.ids import new_id, now_ms
from openbotkit.store import Store, wakeups
from openbotkit.store.tables import Job
from openbotkit.store.wakeups import Listener

CHANNEL = "obk_jobs"

SYNC = "sync"
# Answer one inbound chat-channel update (payload: the integration event's id).
CHANNEL_ANSWER = "channel_answer"
BACKOFF_BASE_MS = 2_000
BACKOFF_MAX_MS = 5 * 60_000


def enqueue_sync(session: Session, account_id: str, file_id: str, dataset_id: str) -> Job:
    """Queue a sync of a file into a dataset; an identical job still waiting is reused."""
    waiting = session.scalar(
        select(Job).where(
            Job.account_id == account_id,
            Job.file_id == file_id,
            Job.dataset_id == dataset_id,
            Job.status == "queued",
        )
    )
    if waiting is not None:
        return waiting
    return _queue(session, account_id, SYNC, file_id=file_id, dataset_id=dataset_id)


def enqueue_payload(
    session: Session, account_id: str, kind: str, payload: dict[str, object], max_attempts: int = 5
) -> Job:
    """Queue a job of another kind than a sync, whose subject is in `payload`."""
    return _queue(session, account_id, kind, payload=payload, max_attempts=max_attempts)


def _queue(
    session: Session,
    account_id: str,
    kind: str,
    *,
    file_id: str = "",
    dataset_id: str = "",
    payload: dict[str, object] | None = None,
    max_attempts: int = 5,
) -> Job:
    """A new queued job, due now, and a wake-up for the idle workers."""
    now = now_ms()
    job = Job(
        id=new_id(),
        account_id=account_id,
        kind=kind,
        file_id=file_id,
        dataset_id=dataset_id,
        payload=payload,
        status="queued",
        stage="queued",
        attempts=0,
        max_attempts=max_attempts,
        run_after=now,
        progress_done=0,
        progress_total=0,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    wakeups.notify(session, CHANNEL)
    return job


def fail_exhausted(session: Session, now: int) -> int:
    """Fail for good the running jobs whose lease ran out on their last attempt.

    An expired lease means the worker died (or hung) mid-job: that attempt counts. A job that
    kills every worker that runs it ends `failed` after `max_attempts`, not retried forever.
    """
    result = session.execute(
        update(Job)
        .where(Job.status == "running", Job.lease_until < now, Job.attempts >= Job.max_attempts)
        .values(
            status="failed",
            stage="failed",
            error="the worker stopped before finishing (lease expired) on every attempt",
            lease_until=None,
            finished_at=now,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def listen(store: Store) -> Listener:
    """How an idle worker waits for work: woken by an enqueue where the database can send
    wake-ups (PostgreSQL), else at the end of its poll interval (store/wakeups.py)."""
    return store.listen(CHANNEL)


def claim_next_job(session: Session, worker_id: str, now: int, lease_ms: int) -> Job | None:
    """Take the oldest runnable job (queued and due, or running with an expired lease).

    One UPDATE ... RETURNING, so two workers never claim the same row. Each claim is a new
    attempt (`attempts` + 1), which fences off the previous holder: everything a worker writes
    about a job names the attempt it holds (`owned`).
    """
    fail_exhausted(session, now)
    runnable = or_(
        and_(Job.status == "queued", Job.run_after <= now),
        and_(Job.status == "running", Job.lease_until < now, Job.attempts < Job.max_attempts),
    )
    # FOR UPDATE SKIP LOCKED where the database has it (SQLite renders none: its write lock
    # already serialises claims).
    pick = (
        select(Job.id)
        .where(runnable)
        .order_by(Job.created_at, Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    claimed = session.execute(
        update(Job)
        .where(Job.id == pick.scalar_subquery(), runnable)
        .values(
            status="running",
            stage="fetch",
            worker_id=worker_id,
            lease_until=now + lease_ms,
            attempts=Job.attempts + 1,
            updated_at=now,
            error=None,
        )
        .returning(Job.id)
    ).scalar()
    return session.get(Job, claimed, populate_existing=True) if claimed else None


def owned(job_id: str, worker_id: str, attempt: int) -> ColumnElement[bool]:
    """The job is still the one this worker claimed, on this attempt, and running."""
    return and_(
        Job.id == job_id,
        Job.worker_id == worker_id,
        Job.attempts == attempt,
        Job.status == "running",
    )


def progress(
    session: Session,
    job: Job,
    worker_id: str,
    stage: str | None,
    done: int,
    total: int,
    lease_ms: int,
) -> bool:
    """Record progress (`stage` None: just renew the lease); False if the job is no longer
    this worker's on this attempt."""
    now = now_ms()
    values: dict[str, object] = {"lease_until": now + lease_ms, "updated_at": now}
    if stage is not None:
        values.update(stage=stage, progress_done=done, progress_total=total)
    result = session.execute(
        update(Job).where(owned(job.id, worker_id, job.attempts)).values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish(
    session: Session,
    job: Job,
    worker_id: str,
    records: int,
    *,
    kept: int = 0,
    added: int = 0,
    removed: int = 0,
    unchanged: bool = False,
) -> bool:
    """Mark the job succeeded with what it did to the file's records (in its final
    transaction); False (nothing written) if this attempt no longer holds it."""
    now = now_ms()
    result = session.execute(
        update(Job)
        .where(owned(job.id, worker_id, job.attempts))
        .values(
            status="succeeded",
            stage="done",
            records=records,
            kept=kept,
            added=added,
            removed=removed,
            unchanged=unchanged,
            progress_done=Job.progress_total,
            finished_at=now,
            updated_at=now,
            lease_until=None,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def fail(session: Session, job: Job, worker_id: str, error: str, *, retry: bool) -> Job | None:
    """Give the job back with exponential backoff, or fail it for good. A worker whose lease
    was taken over changes nothing (None)."""
    current = session.scalar(
        select(Job)
        .where(owned(job.id, worker_id, job.attempts))
        .execution_options(populate_existing=True)
    )
    if current is None:
        return None
    now = now_ms()
    current.error = error[:2000]
    current.lease_until = None
    current.updated_at = now
    if retry and current.attempts < current.max_attempts:
        current.status, current.stage = "queued", "queued"
        current.run_after = now + min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (current.attempts - 1))
    else:
        current.status, current.stage = "failed", "failed"
        current.finished_at = now
    return current
