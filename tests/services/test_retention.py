"""Retention: finished jobs and connector executions older than OBK_RETENTION_DAYS are pruned
by the worker; queued and running jobs stay whatever their age."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from openbotkit.engine import Engine
from openbotkit.ids import new_id, now_ms
from openbotkit.services.retention import DAY_MS
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import Execution, Job


def seed(engine: Engine, age_days: float, status: str) -> str:
    at = now_ms() - int(age_days * DAY_MS)
    job_id = new_id()
    with engine.store.session() as session:
        account = engine.ensure_account("alice")
        session.add(
            Job(
                id=job_id,
                account_id=account,
                kind="sync",
                file_id="f",
                dataset_id="d",
                status=status,
                created_at=at,
                updated_at=at,
                finished_at=at if status in ("succeeded", "failed") else None,
            )
        )
        session.add(
            Execution(
                id=job_id,
                action="list_bots",
                effect="read",
                backend="local",
                status="ok",
                duration_ms=1.0,
                created_at=at,
            )
        )
    return job_id


def remaining(engine: Engine) -> tuple[set[str], set[str]]:
    with engine.store.session(write=False) as session:
        jobs = set(session.scalars(select(Job.id)))
        executions = set(session.scalars(select(Execution.id)))
    return jobs, executions


def test_worker_prunes_old_finished_jobs_and_executions(tmp_path: Path) -> None:
    engine = Engine(Settings(home=tmp_path / "home", retention_days=30))
    engine.store.migrate()
    old_ok, old_failed = seed(engine, 31, "succeeded"), seed(engine, 40, "failed")
    old_queued, old_running = seed(engine, 90, "queued"), seed(engine, 90, "running")
    recent = seed(engine, 29, "succeeded")
    pruned = Worker(engine.runtime).prune()
    assert (pruned.jobs, pruned.executions) == (2, 4)
    jobs, executions = remaining(engine)
    assert jobs == {old_queued, old_running, recent}
    assert executions == {recent}
    assert old_ok not in jobs and old_failed not in jobs
    engine.close()


def test_zero_days_keeps_everything(tmp_path: Path) -> None:
    engine = Engine(Settings(home=tmp_path / "home", retention_days=0))
    engine.store.migrate()
    kept = seed(engine, 3650, "succeeded")
    assert Worker(engine.runtime).prune().jobs == 0
    assert remaining(engine) == ({kept}, {kept})
    engine.close()
