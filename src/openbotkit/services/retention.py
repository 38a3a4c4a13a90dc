"""Retention: finished jobs and connector executions older than OBK_RETENTION_DAYS go away.

Both tables only grow otherwise (a job per file sync, an execution per connector run). Queued
and running jobs are never touched, whatever their age. 0 days keeps everything.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from openbotkit.ids import now_ms
from openbotkit.store import Store
from openbotkit.store.tables import Execution, Job

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Pruned:
    jobs: int
    executions: int


def cutoff_ms(days: float, now: int | None = None) -> int | None:
    """The creation/finish time before which rows go, or None when retention is off."""
    return None if days <= 0 else (now or now_ms()) - int(days * DAY_MS)


def prune_executions(session: Session, days: float, now: int | None = None) -> int:
    """Delete connector executions older than `days` (an indexed range: cheap every run)."""
    cutoff = cutoff_ms(days, now)
    if cutoff is None:
        return 0
    result = session.execute(delete(Execution).where(Execution.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)


def prune(store: Store, days: float, now: int | None = None) -> Pruned:
    """Delete finished jobs and executions older than `days`; one short transaction each."""
    cutoff = cutoff_ms(days, now)
    if cutoff is None:
        return Pruned(0, 0)
    with store.session() as session:
        result = session.execute(
            delete(Job).where(Job.status.in_(("succeeded", "failed")), Job.finished_at < cutoff)
        )
        jobs = int(getattr(result, "rowcount", 0) or 0)
    with store.session() as session:
        executions = prune_executions(session, days, now)
    return Pruned(jobs, executions)
