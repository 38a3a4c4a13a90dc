"""The job view and dry-run sync over REST: ChatBotKit's Python SDK (its generic `client_fetch`:
neither official SDK has a job resource), the connector's HTTP backend, and
`obk files sync --wait --base-url`, which follows a server's jobs through fetch_job."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from typing import Any

import pytest
from chatbotkit import APIError, ChatBotKit

from tests.contract.conftest import OBK, LiveServer
from tests.contract.test_connector_http import connector
from tests.contract.test_python_sdk import api_error, with_sdk
from tests.services.test_jobs import JOB_KEYS

pytestmark = pytest.mark.contract


async def attached_file(cbk: ChatBotKit, text: str) -> tuple[str, str]:
    """A file with `text` as content, attached to a new dataset: (file id, dataset id)."""
    f = await cbk.file.create({"name": "notes.txt"})
    data = "data:text/plain;base64," + base64.b64encode(text.encode()).decode()
    await cbk.client_fetch(f"/api/v1/file/{f.id}/upload", record={"file": data})
    ds = await cbk.dataset.create({"name": "notes"})
    await cbk.client_fetch(f"/api/v1/dataset/{ds.id}/file/{f.id}/attach", record={"type": "source"})
    return f.id, ds.id


async def until_finished(cbk: ChatBotKit, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        job: dict[str, Any] = await cbk.client_fetch(f"/api/v1/job/{job_id}/fetch")
        if job["status"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_job_view_and_dry_run_through_the_python_sdk(live_server: LiveServer) -> None:
    text = "The shop opens at 9am.\n\nIt closes at 6pm on weekdays."

    async def body(cbk: ChatBotKit) -> None:
        file_id, ds = await attached_file(cbk, text)
        preview = await cbk.client_fetch(f"/api/v1/file/{file_id}/sync", record={"dryRun": True})
        assert preview["jobs"] == [] and preview["diff"]["added"] >= 1
        assert preview["diffs"][0]["datasetId"] == ds
        synced = await cbk.file.sync(file_id)
        assert synced.id == file_id
        listed = await cbk.client_fetch("/api/v1/job/list", query={"fileId": file_id})
        assert listed["cursor"] == "" and len(listed["items"]) == 1
        job_id = listed["items"][0]["id"]
        assert set(listed["items"][0]) >= JOB_KEYS
        job = await until_finished(cbk, job_id)
        assert set(job) == JOB_KEYS
        assert (job["status"], job["stage"], job["unchanged"]) == ("done", "done", False)
        assert job["stats"]["added"] == preview["diff"]["added"] and job["stats"]["kept"] == 0
        done = await cbk.client_fetch("/api/v1/job/list", query={"datasetId": ds, "status": "done"})
        assert [j["id"] for j in done["items"]] == [job_id]
        again = await cbk.client_fetch(
            f"/api/v1/dataset/{ds}/file/{file_id}/sync", record={"dryRun": True}
        )
        assert again["diffs"][0]["unchanged"] is True and again["diff"]["added"] == 0
        bad = await api_error(cbk.client_fetch("/api/v1/job/list", query={"status": "nope"}))
        assert bad.status_code == 400
        box.append(job_id)

    box: list[str] = []
    with_sdk(live_server, body)

    async def other(cbk: ChatBotKit) -> None:
        err = await api_error(cbk.client_fetch(f"/api/v1/job/{box[0]}/fetch"))
        assert isinstance(err, APIError) and err.code == "NOT_FOUND"
        assert (await cbk.client_fetch("/api/v1/job/list"))["items"] == []

    with_sdk(live_server, other, token=live_server.token_b)


@pytest.mark.timeout(400)  # `obk files sync --wait` gets 300 s of its own below
def test_job_view_through_the_connector_and_files_sync_wait(live_server: LiveServer) -> None:
    token = live_server.token_a
    file_id = connector(live_server, "create_file", {"name": "c.txt"}, token)[1]["data"]["id"]
    data = "data:text/plain;base64," + base64.b64encode(b"Robots charge at night.").decode()
    connector(live_server, "upload_file", {"fileId": file_id, "file": data}, token)
    ds = connector(live_server, "create_dataset", {}, token)[1]["data"]["id"]
    connector(
        live_server,
        "attach_dataset_file",
        {"datasetId": ds, "fileId": file_id, "type": "source"},
        token,
    )
    env = {**live_server.env(), "CHATBOTKIT_API_SECRET": token}
    proc = subprocess.run(
        [OBK, "files", "sync", file_id, "--wait", "--json", "--base-url", live_server.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    [state] = out["jobs"]
    assert state["status"] == "done" and state["stats"] == {"kept": 0, "added": 1, "removed": 0}
    code, fetched = connector(live_server, "fetch_job", {"jobId": state["id"]}, token)
    assert code == 0 and fetched["data"] == state
    code, listed = connector(live_server, "list_jobs", {"fileId": file_id}, token)
    assert code == 0 and [j["id"] for j in listed["data"]["items"]] == [state["id"]]
    code, missing = connector(live_server, "fetch_job", {"jobId": state["id"]}, live_server.token_b)
    assert code == 1 and missing["error"]["code"] == "not_found"
    records = connector(live_server, "list_dataset_records", {"datasetId": ds}, token)[1]
    assert [r["text"] for r in records["data"]["items"]] == ["Robots charge at night."]
