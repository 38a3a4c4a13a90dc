"""`obk worker`, `obk jobs list|show` and `obk files sync`: the durable job queue at a shell."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Any

import click
from sqlalchemy import select

from openbotkit.actions import REGISTRY
from openbotkit.cli.connector import Runner
from openbotkit.cli.state import state
from openbotkit.errors import NotFound
from openbotkit.logs import configure_logging
from openbotkit.store.tables import Job


def job_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "kind": job.kind,
        "fileId": job.file_id,
        "datasetId": job.dataset_id,
        "status": job.status,
        "stage": job.stage,
        "attempts": job.attempts,
        "progress": {"done": job.progress_done, "total": job.progress_total},
        "records": job.records,
        "stats": {"kept": job.kept, "added": job.added, "removed": job.removed},
        "unchanged": job.unchanged,
        "error": job.error,
        "createdAt": job.created_at,
        "updatedAt": job.updated_at,
        "finishedAt": job.finished_at,
    }


@click.command()
@click.option("--once", is_flag=True, help="Run the jobs that are due now, then exit.")
@click.option("--poll", default=1.0, show_default=True, help="Seconds between polls when idle.")
def worker(once: bool, poll: float) -> None:
    """Run file-sync jobs until interrupted (several workers may run at once)."""
    from openbotkit.services.worker import Worker

    st = state()
    configure_logging(st.settings.log_level, st.settings.log_format)
    w = Worker(st.engine.runtime)
    if once:
        count = 0
        while w.run_once() is not None:
            count += 1
        click.echo(f"ran {count} job(s)")
        return
    w.runtime.keep_heap_settled()  # it runs until stopped (see openbotkit.heap)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"worker {w.worker_id} waiting for jobs (Ctrl-C to stop)")
    try:
        w.run(stop, poll)
    except KeyboardInterrupt:
        stop.set()


@click.group()
def jobs() -> None:
    """Inspect background jobs (file syncs)."""


@jobs.command("list")
@click.option("--status", type=click.Choice(["queued", "running", "succeeded", "failed"]))
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def list_jobs(status: str | None, limit: int, as_json: bool) -> None:
    """Recent jobs, newest first, across accounts."""
    query = select(Job).order_by(Job.created_at.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    with state().engine.store.session(write=False) as session:
        items = [job_json(j) for j in session.scalars(query)]
    if as_json:
        click.echo(json.dumps({"items": items}))
        return
    for j in items:
        done, total = j["progress"]["done"], j["progress"]["total"]
        click.echo(
            f"{j['id']}  {j['status']:<9} {j['stage']:<7} {done:>5}/{total:<5} "
            f"file {j['fileId']} -> dataset {j['datasetId']}"
            + (f"  error: {j['error']}" if j["error"] else "")
        )


@jobs.command("show")
@click.argument("job_id")
def show(job_id: str) -> None:
    """One job as JSON."""
    with state().engine.store.session(write=False) as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}; see `obk jobs list`")
        click.echo(json.dumps(job_json(job), indent=2))


def follow(runner: Runner, job_ids: list[str], timeout_s: float = 3600) -> list[dict[str, Any]]:
    """Show a progress bar per job until each has finished; return their final states.

    Reads the jobs with `fetch_job`, so it follows a server's jobs (`--base-url`) the same way
    as the embedded ones.
    """
    from rich.progress import BarColumn, Progress, TextColumn

    fetch = REGISTRY.get("fetch_job")
    deadline = time.monotonic() + timeout_s
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[status]}")
    ) as bar:
        tasks = {j: bar.add_task(f"job {j}", total=None, status="queued") for j in job_ids}
        while True:
            states = [runner.run(fetch, fetch.parse_input({"jobId": j})) for j in job_ids]
            for s in states:
                total = s["progress"]["total"] or None
                bar.update(
                    tasks[s["id"]],
                    completed=s["progress"]["done"],
                    total=total,
                    status=f"{s['status']} ({s['stage']})",
                )
            if all(s["status"] in ("done", "failed") for s in states):
                return states
            if time.monotonic() > deadline:
                return states
            time.sleep(0.3)


@click.group()
def files() -> None:
    """File content at a shell: sync into datasets and watch the jobs."""


def _describe(job: dict[str, Any]) -> str:
    stats = job["stats"]
    if job.get("unchanged"):
        return f"dataset {job['datasetId']}: unchanged ({stats['kept']} record(s))"
    return (
        f"dataset {job['datasetId']}: {stats['added']} added, {stats['removed']} removed, "
        f"{stats['kept']} kept"
    )


@files.command("sync")
@click.argument("file_id")
@click.option("--wait", is_flag=True, help="Show progress until the jobs finish.")
@click.option("--dry-run", is_flag=True, help="Only show what a sync would change.")
@click.option("--json", "as_json", is_flag=True)
@click.option("--base-url", help="A server to sync on (or CHATBOTKIT_BASE_URL).")
def sync(file_id: str, wait: bool, dry_run: bool, as_json: bool, base_url: str | None) -> None:
    """Queue an import of a file into every dataset it is attached to."""
    runner = Runner(base_url)
    act = REGISTRY.get("sync_file")
    out = runner.run(act, act.parse_input({"fileId": file_id, "dryRun": dry_run}))
    if dry_run:
        if as_json:
            click.echo(json.dumps(out))
            return
        for d in out["diffs"]:
            verdict = "unchanged" if d["unchanged"] else "would change"
            click.echo(
                f"dataset {d['datasetId']}: {verdict}: {d['added']} added, {d['removed']} "
                f"removed, {d['kept']} kept"
            )
            for c in d["changed"]:
                before, after = c.get("before"), c.get("after")
                if before is not None:
                    click.echo(f"  - {before[:100]!r}")
                if after is not None:
                    click.echo(f"  + {after[:100]!r}")
        return
    job_ids = [j["id"] for j in out["jobs"]]
    if not job_ids:
        click.echo("the file is attached to no dataset: nothing to sync")
        return
    if not wait:
        click.echo(
            json.dumps(out) if as_json else f"queued {len(job_ids)} job(s): {', '.join(job_ids)}"
        )
        return
    stop = threading.Event()
    runner_thread = None
    if not runner.base_url:
        # Embedded: without a separate worker running, do the work here.
        from openbotkit.services.worker import Worker

        engine = state().engine
        runner_thread = threading.Thread(
            target=Worker(engine.runtime).run, args=(stop, 0.2), daemon=True
        )
        runner_thread.start()
    try:
        states = follow(runner, job_ids)
    finally:
        stop.set()
        if runner_thread is not None:
            runner_thread.join(timeout=30)
    if as_json:
        click.echo(json.dumps({"id": out["id"], "jobs": states}))
    for s in states:
        if s["status"] == "failed":
            raise click.ClickException(f"job {s['id']} failed: {s.get('error')}")
    if not as_json:
        for s in states:
            click.echo(_describe(s))
