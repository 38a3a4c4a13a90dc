"""Scale-out: two `obk serve` API processes and two `obk worker` processes on one PostgreSQL and
one S3 store. Forty files uploaded through both APIs are synced at once; one worker is killed
with SIGKILL while it holds a running job. Afterwards every file's records exist exactly once,
and no job is left queued or running: the dead worker's lease ran out and the other worker
redid its job (a second attempt)."""

from __future__ import annotations

import random
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from openbotkit.retrieval.embedders import Embedder
from tests.cli.test_connector import OBK
from tests.conftest import libpq_url, new_bucket, new_postgres_database
from tests.pg import PostgresServer
from tests.reliability.serving import READY_PATH, create_secret, obk_env, running, serve_args
from tests.server.serving import free_port

pytestmark = [pytest.mark.postgresql, pytest.mark.slow]

FILES = 40
PARAGRAPHS = 60
LEASE_S = 4
WORDS = (
    "harbour lantern orchard meadow granite copper violet thunder saddle compass ember quartz "
    "willow falcon prairie glacier cinder marble beacon canyon timber lagoon summit pebble "
    "cobalt thistle juniper basalt heron tundra"
).split()


def marker(i: int, j: int) -> str:
    """A token found in paragraph j of file i and nowhere else."""
    return f"mk{i:02d}q{j:03d}z"


def file_text(i: int) -> str:
    """Paragraphs of ~30 tokens: several pack into one record, and none is short enough to be
    carried over into the next record (the chunker's overlap), so each lands in exactly one."""
    rng = random.Random(i)
    paragraphs = [
        f"{marker(i, j)} " + " ".join(rng.choice(WORDS) for _ in range(24)) + "."
        for j in range(PARAGRAPHS)
    ]
    return "\n\n".join(paragraphs) + "\n"


def running_jobs_of(db_url: str, pid: int) -> list[tuple[str, str]]:
    """(job id, stage) of the jobs the worker process `pid` holds, read from the queue table
    (the job API does not say which worker runs a job; worker ids are host:pid:suffix)."""
    prefix = f"{socket.gethostname()}:{pid}:"
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, stage FROM jobs WHERE status = 'running' AND starts_with(worker_id, %s)",
            (prefix,),
        ).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def queue_table(db_url: str) -> list[tuple[Any, ...]]:
    """The queue as the database has it (to explain a failure)."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        return conn.execute(
            "SELECT id, status, stage, attempts, worker_id, lease_until, error FROM jobs"
        ).fetchall()


def kill_mid_sync(
    worker: subprocess.Popen[bytes], db_url: str, api: httpx.Client, deadline: float
) -> str:
    """SIGKILL `worker` while it holds a running job past its fetch stage; that job's id.

    The worker is frozen (SIGSTOP) before it is looked at, so the job it holds cannot finish
    between the look and the kill; a worker caught between two jobs is let go on (SIGCONT)."""
    while time.monotonic() < deadline:
        worker.send_signal(signal.SIGSTOP)
        held = [j for j, stage in running_jobs_of(db_url, worker.pid) if stage != "fetch"]
        if held and api.get(f"/job/{held[0]}/fetch").json()["status"] == "running":
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
            return held[0]
        worker.send_signal(signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the worker never held a running job")


def all_pages(api: httpx.Client, path: str, **query: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = ""
    while True:
        page = api.get(path, params={**query, "cursor": cursor, "take": 100})
        assert page.status_code == 200, page.text
        body = page.json()
        items += body["items"]
        cursor = body["cursor"]
        if not cursor:
            return items


@pytest.fixture
def db_url(postgres_server: PostgresServer) -> str:
    """A database of its own: the processes here outlive no test, but share nothing with others."""
    return new_postgres_database(postgres_server, f"obk_scale_{uuid.uuid4().hex[:8]}").url


# 66 s on a busy 2-core machine, but its own waits (90 s for each API to start, 90 s for the
# jobs) add up to more than the suite's limit: they report first.
@pytest.mark.timeout(600)
def test_two_apis_two_workers_one_killed_mid_sync(
    tmp_path: Path, db_url: str, s3_endpoint: str, cache_dir: Path, local_embedder: Embedder
) -> None:
    # The fixture prepared the embedding model in `cache_dir`: the workers load it from there.
    assert local_embedder.model_id
    bucket = new_bucket(s3_endpoint)
    shared = {
        "OBK_DATABASE_URL": db_url,
        "OBK_BLOB_URL": bucket["blob_url"],
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": bucket["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": bucket["aws_secret_access_key"],
        "AWS_REGION": bucket["aws_region"],
        "OBK_JOB_LEASE_S": str(LEASE_S),
        "OBK_CACHE_DIR": str(cache_dir),
    }
    # One home per process, as on separate machines: all they share is the database and bucket.
    envs = [obk_env(tmp_path / f"machine{n}", **shared) for n in range(4)]
    token = create_secret(envs[0], "team")
    headers = {"Authorization": f"Bearer {token}"}
    texts = {i: file_text(i) for i in range(FILES)}

    with ExitStack() as stack:
        origins = []
        for env in envs[:2]:
            port = free_port()
            origins.append(f"http://127.0.0.1:{port}")
            stack.enter_context(
                running(
                    serve_args(port, "--no-worker"),
                    env,
                    Path(env["OBK_HOME"] + ".log"),
                    origins[-1] + READY_PATH,
                )
            )
        workers = [
            stack.enter_context(
                running(
                    [OBK, "worker", "--poll", "0.5"],
                    {**env, "OBK_LOG_LEVEL": "info"},
                    Path(env["OBK_HOME"] + ".log"),
                )
            )
            for env in envs[2:]
        ]
        apis = [
            stack.enter_context(httpx.Client(base_url=o + "/api/v1", headers=headers, timeout=60))
            for o in origins
        ]
        dataset = apis[0].post("/dataset/create", json={"name": "scale"}).json()["id"]

        def upload(i: int) -> str:
            """File i through API i % 2: even ones pass through the API, odd ones are PUT
            straight to the bucket with the store's presigned URL."""
            api = apis[i % 2]
            body = texts[i].encode()
            file_id = str(api.post("/file/create", json={"name": f"f{i}.txt"}).json()["id"])
            if i % 2 == 0:
                done = api.post(
                    f"/file/{file_id}/upload", files={"file": (f"f{i}.txt", body, "text/plain")}
                )
                assert done.status_code == 200, done.text
            else:
                req = api.post(
                    f"/file/{file_id}/upload",
                    json={"file": {"type": "text/plain", "size": len(body), "name": f"f{i}.txt"}},
                ).json()["uploadRequest"]
                assert req["url"].startswith(s3_endpoint)
                put = httpx.put(req["url"], content=body, headers=req["headers"], timeout=60)
                assert put.status_code == 200, put.text
            attached = api.post(
                f"/dataset/{dataset}/file/{file_id}/attach", json={"type": "source"}
            )
            assert attached.status_code == 200, attached.text
            return file_id

        with ThreadPoolExecutor(8) as pool:
            file_ids = list(pool.map(upload, range(FILES)))

            def sync(i: int) -> str:
                out = apis[(i + 1) % 2].post(f"/file/{file_ids[i]}/sync", json={})
                assert out.status_code == 200, out.text
                [job] = out.json()["jobs"]
                return str(job["id"])

            job_ids = list(pool.map(sync, range(FILES)))

        deadline = time.monotonic() + 90
        killed_job = kill_mid_sync(workers[0], db_url, apis[0], deadline)

        while time.monotonic() < deadline:
            states = all_pages(apis[1], "/job/list", datasetId=dataset)
            if all(j["status"] in ("done", "failed") for j in states):
                break
            time.sleep(0.3)
        assert workers[1].poll() is None, "the surviving worker died"

        jobs = {j["id"]: j for j in all_pages(apis[0], "/job/list", datasetId=dataset)}
        assert set(jobs) == set(job_ids)
        assert {j["status"] for j in jobs.values()} == {"done"}, queue_table(db_url)
        # The killed worker's attempt counts: the job was claimed again once its lease ran out.
        assert jobs[killed_job]["attempts"] == 2
        assert sum(j["attempts"] for j in jobs.values()) == FILES + 1

        records = all_pages(apis[1], f"/dataset/{dataset}/record/list")
        by_file: dict[str, list[dict[str, Any]]] = {f: [] for f in file_ids}
        for rec in records:
            by_file[rec["meta"]["fileId"]].append(rec)
        for i, file_id in enumerate(file_ids):
            mine = by_file[file_id]
            assert {r["source"] for r in mine} == {f"file:///{file_id}"}
            chunks = sorted(r["meta"]["chunk"] for r in mine)
            assert chunks == list(range(len(mine))), f"file {i}: chunks {chunks}"
            joined = "\n".join(r["text"] for r in mine)
            counts = [joined.count(marker(i, j)) for j in range(PARAGRAPHS)]
            assert counts == [1] * PARAGRAPHS, f"file {i}: paragraph counts {counts}"
            paragraphs = {p.strip() for p in texts[i].split("\n\n") if p.strip()}
            found = {p.strip() for r in mine for p in r["text"].split("\n\n")}
            assert found == paragraphs, f"file {i}: records differ from its content"
        assert len(records) == sum(len(v) for v in by_file.values())
