"""Crash: SIGKILL `obk serve` while clients write; after a restart every write that was answered
2xx is there, on SQLite (whose file also passes `PRAGMA integrity_check`) and on PostgreSQL."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.reliability.serving import READY_PATH, obk_serve, running, serve_args, serve_log
from tests.server.serving import free_port


def test_sigkill_while_writing_loses_no_acknowledged_write(
    tmp_path: Path, database_url: str | None
) -> None:
    home = tmp_path / "home"
    acknowledged: list[str] = []  # fetch paths of the writes answered 2xx
    lock = threading.Lock()
    stop_writing = threading.Event()
    settings = {"OBK_DATABASE_URL": database_url} if database_url else {}
    with obk_serve(home, **settings) as served:
        headers = served.headers("a")
        with httpx.Client(headers=headers, timeout=30) as client:
            dataset = client.post(served.base + "/dataset/create", json={}).json()["id"]
            conversation = client.post(served.base + "/conversation/create", json={}).json()["id"]

        def write(kind: int) -> None:
            n = 0
            with httpx.Client(headers=headers, timeout=30) as client:
                while not stop_writing.is_set():
                    n += 1
                    try:
                        if kind == 0:
                            resp = client.post(served.base + "/bot/create", json={"name": f"b{n}"})
                            path = "/bot/{}/fetch"
                        elif kind == 1:
                            resp = client.post(
                                served.base + f"/conversation/{conversation}/message/create",
                                json={"type": "user", "text": f"message {n}"},
                            )
                            path = f"/conversation/{conversation}/message/{{}}/fetch"
                        else:
                            resp = client.post(
                                served.base + f"/dataset/{dataset}/record/create",
                                json={"text": f"record number {n}"},
                            )
                            path = f"/dataset/{dataset}/record/{{}}/fetch"
                    except httpx.HTTPError:
                        return  # the server is gone
                    if resp.status_code < 300:
                        with lock:
                            acknowledged.append(path.format(resp.json()["id"]))

        writers = [threading.Thread(target=write, args=(i % 3,)) for i in range(6)]
        for w in writers:
            w.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 60 and time.monotonic() < deadline:
            time.sleep(0.05)
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(timeout=10)
        stop_writing.set()
        for w in writers:
            w.join(timeout=30)
        env = served.env
    assert len(acknowledged) >= 30
    if database_url is None:
        db = sqlite3.connect(home / "openbotkit.sqlite3")
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            db.close()
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with (
        running(serve_args(port), env, serve_log(env, port), origin + READY_PATH),
        httpx.Client(headers=headers, timeout=30) as client,
    ):
        missing = [p for p in acknowledged if client.get(origin + "/api/v1" + p).status_code != 200]
        assert missing == []
        # Acknowledged records are searchable too (index entries committed with them).
        if any("/record/" in p for p in acknowledged):
            record = client.get(origin + "/api/v1" + acknowledged_record(acknowledged)).json()
            found = client.post(
                origin + f"/api/v1/dataset/{dataset}/search",
                json={"search": record["text"], "mode": "lexical"},
            )
            assert found.status_code == 200, found.text
            assert record["id"] in [r["id"] for r in found.json()["records"]], found.text


def acknowledged_record(acknowledged: list[str]) -> str:
    return next(p for p in reversed(acknowledged) if "/record/" in p)
