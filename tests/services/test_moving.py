"""`obk db copy`: a populated embedded home copied into a fresh database and blob store, then
every list, record, vector, secret and file byte compared through the API."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from openbotkit.backends import blob_store
from openbotkit.engine import Engine
from openbotkit.errors import Conflict, InvalidInput, NotFound
from openbotkit.ingestion.blobs import read_all
from openbotkit.models.providers import LLMProvider
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services.moving import copy_installation
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store import Store
from openbotkit.store.copy import tables
from openbotkit.store.tables import Job, RecordVector
from tests.conftest import new_bucket
from tests.server.test_app import Client

OBK = shutil.which("obk", path=str(Path(sys.executable).parent)) or "obk"
MANUAL = b"# Zephyr-9\n\n## Payload\nThe Zephyr-9 carries 42 kilograms.\n\n## Care\nWipe it dry.\n"


def populate(engine: Engine, tmp_path: Path) -> str:
    """Two accounts with bots, datasets, records, synced files, conversations and a secret.
    Returns alice's secret."""
    for account in ("alice", "bob"):
        run = lambda name, data=None, a=account: engine.execute(name, data, account=a)  # noqa: E731
        run("create_bot", {"name": f"{account}'s bot", "meta": {"team": "ops"}})
        ds = run("create_dataset", {"name": "manuals", "searchMaxRecords": 5})["id"]
        for line in ("Robots recharge overnight.", "The dock is blue.", "Spare parts ship fast."):
            run("create_dataset_record", {"datasetId": ds, "text": line, "meta": {"k": 1}})
        manual = tmp_path / f"{account}-manual.md"
        manual.write_bytes(MANUAL)
        file_id = run("create_file", {"name": "manual.md", "visibility": "public"})["id"]
        run("upload_file", {"fileId": file_id, "path": str(manual)})
        run("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
        run("sync_file", {"fileId": file_id})
        run("create_file", {"name": "empty.bin"})  # no content yet
        conv = run("create_conversation", {"name": "support", "datasetId": ds})["id"]
        run("create_conversation_message", {"conversationId": conv, "type": "user", "text": "Hi"})
        run("create_conversation_message", {"conversationId": conv, "type": "bot", "text": "Hello"})
    while (job := Worker(engine.runtime).run_once()) is not None:
        assert job.status == "succeeded", job.error
    from openbotkit.services.secrets import create_secret

    return create_secret(engine, "alice", "ci")[1]


def everything(engine: Engine, tmp_path: Path) -> dict[str, Any]:
    """What each account sees through the API, file bytes included; signed links left out
    (they name the store that serves them)."""
    seen: dict[str, Any] = {}
    tmp_path.mkdir()
    for account in ("alice", "bob"):
        run = lambda name, data=None, a=account: engine.execute(name, data, account=a)  # noqa: E731
        for kind in ("bots", "datasets", "files", "conversations"):
            seen[f"{account}/{kind}"] = run(f"list_{kind}", {"take": 100})
        for ds in seen[f"{account}/datasets"]["items"]:
            key = f"{account}/dataset/{ds['id']}"
            seen[key] = run("fetch_dataset", {"datasetId": ds["id"]})
            seen[key + "/records"] = run("list_dataset_records", {"datasetId": ds["id"]})
            seen[key + "/files"] = run("list_dataset_files", {"datasetId": ds["id"]})
            # Vectors and the lexical index, as search sees them (scores included).
            seen[key + "/search"] = run(
                "search_dataset", {"datasetId": ds["id"], "search": "how heavy a load?"}
            )
        for conv in seen[f"{account}/conversations"]["items"]:
            seen[f"{account}/conv/{conv['id']}"] = run(
                "list_conversation_messages", {"conversationId": conv["id"]}
            )
        for f in seen[f"{account}/files"]["items"]:
            try:
                got = run("download_file", {"fileId": f["id"]})
            except NotFound:  # no content yet (spec 7.4: not_found for the JSON form)
                seen[f"{account}/file/{f['id']}"] = "no content"
                continue
            got.pop("url")
            reader = engine.runtime.blobs.open(f["id"])
            assert reader is not None
            got["bytes"] = read_all(reader)
            seen[f"{account}/file/{f['id']}"] = got
        seen[f"{account}/usage"] = run("fetch_usage")
    with engine.store.session(write=False) as session:
        seen["jobs"] = [
            {c.name: getattr(j, c.name) for c in Job.__table__.columns}
            for j in session.scalars(select(Job).order_by(Job.id))
        ]
        seen["vectors"] = [
            (v.record_id, v.model_id, v.vector, v.version)
            for v in session.scalars(select(RecordVector).order_by(RecordVector.record_id))
        ]
    return seen


@pytest.fixture
def source(
    tmp_path: Path, local_embedder: Embedder, local_llm: LLMProvider
) -> Iterator[tuple[Engine, str]]:
    """A populated home on the embedded default (SQLite file, local blobs)."""
    eng = Engine(
        Settings(home=tmp_path / "source-home"),
        embedder=local_embedder,
        local_llms=[local_llm],
        local_paths=True,  # populate() uploads from local files
    )
    yield eng, populate(eng, tmp_path)
    eng.close()


def target_engine(settings: Settings, embedder: Embedder) -> Engine:
    return Engine(settings, embedder=embedder)


def test_copy_into_sqlite_and_s3_loses_nothing(
    source: tuple[Engine, str], tmp_path: Path, s3_endpoint: str, local_embedder: Embedder
) -> None:
    engine, token = source
    before = everything(engine, tmp_path / "before")
    assert before["vectors"] and before["jobs"] and before["alice/usage"]["messages"] == 2
    target_url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    fields = new_bucket(s3_endpoint)
    target_settings = Settings(home=tmp_path / "target-home", database_url=target_url, **fields)
    report = copy_installation(engine.runtime, target_url, blob_store(target_settings))
    assert report.files == 2 and report.bytes == 2 * len(MANUAL)
    assert report.rows["accounts"] == 2 and report.rows["messages"] == 4

    moved = target_engine(target_settings, local_embedder)
    try:
        after = everything(moved, tmp_path / "after")
        assert after.keys() == before.keys()
        for key in before:
            assert after[key] == before[key], key
        # The secret made on the old store opens the new one's API.
        client = Client(moved)
        client.token = token
        assert client.request("GET", "/api/v1/bot/list").json()["items"][0]["name"] == (
            "alice's bot"
        )
        client.close()
        # And the moved installation keeps working: new records are searchable.
        ds = after["alice/datasets"]["items"][0]["id"]
        moved.execute(
            "create_dataset_record",
            {"datasetId": ds, "text": "Batteries last 9 hours."},
            account="alice",
        )
        found = moved.execute(
            "search_dataset", {"datasetId": ds, "search": "battery life"}, account="alice"
        )
        assert "9 hours" in found["records"][0]["text"]
    finally:
        moved.close()


def test_copy_twice_or_into_a_used_target_is_refused(
    source: tuple[Engine, str], tmp_path: Path
) -> None:
    engine, _ = source
    target_url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    blobs = blob_store(engine.settings, (tmp_path / "target-blobs").as_uri())
    copy_installation(engine.runtime, target_url, blobs)
    with pytest.raises(Conflict, match="not empty \\(table 'accounts' has rows\\)"):
        copy_installation(engine.runtime, target_url, blobs)
    fresh_db = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    with pytest.raises(Conflict, match="target blob store is not empty"):
        copy_installation(engine.runtime, fresh_db, blobs)
    with pytest.raises(InvalidInput, match="names the database being copied"):
        copy_installation(engine.runtime, engine.store.url, None)


def test_a_failed_copy_leaves_the_target_empty(source: tuple[Engine, str], tmp_path: Path) -> None:
    engine, _ = source
    blobs = engine.runtime.blobs
    damaged = sorted(blobs.keys())[-1]
    blobs.put_chunks(damaged, [b"not what was uploaded"], 1000)
    target_url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    target_blobs = blob_store(engine.settings, (tmp_path / "target-blobs").as_uri())
    with pytest.raises(Conflict, match=f"file {damaged} does not match its recorded SHA-256"):
        copy_installation(engine.runtime, target_url, target_blobs)
    assert list(target_blobs.keys()) == []
    target = Store(target_url)
    with target.read_engine.connect() as conn:
        for table in tables():
            assert conn.execute(text(f"SELECT count(*) FROM {table.name}")).scalar() == 0
    target.dispose()


def test_obk_db_copy_command(source: tuple[Engine, str], tmp_path: Path) -> None:
    engine, _ = source
    target_url = f"sqlite:///{tmp_path / 'cli-target.sqlite3'}"
    env = {**os.environ, "OBK_HOME": str(engine.settings.home), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [OBK, "db", "copy", "--to", target_url, "--to-blobs", (tmp_path / "tb").as_uri()],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "records" in proc.stdout and "2 files" in proc.stdout
    again = subprocess.run(
        [OBK, "db", "copy", "--to", target_url], env=env, capture_output=True, text=True
    )
    assert again.returncode == 1
    assert again.stderr.startswith("error: conflict: the target database")
