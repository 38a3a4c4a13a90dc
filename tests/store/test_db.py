"""The store: migrations on first use, WAL mode, several processes writing one file at once."""

from __future__ import annotations

import gc
import multiprocessing
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from openbotkit.actions.base import IdOutput
from openbotkit.actions.bots import CreateBotInput
from openbotkit.actions.registry import Effect, Registry, action
from openbotkit.engine import Engine
from openbotkit.errors import NotFound
from openbotkit.services import bots
from openbotkit.services.context import Ctx
from openbotkit.settings import Settings
from openbotkit.store import Store
from tests.store.holding import another_process_writing


def test_first_use_migrates_and_enables_wal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.session(write=False) as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
        tables = set(session.execute(text("SELECT name FROM sqlite_master")).scalars())
        version = session.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert {"bots", "datasets", "records", "files", "messages", "secrets"} <= tables
    assert version
    store.dispose()


def test_failed_action_leaves_nothing_behind(engine: Engine) -> None:
    """An action that fails half-way (after writing) is rolled back whole."""
    registry = Registry()

    @action("write_then_fail", Effect.WRITE, "POST /test/fail", registry=registry)
    def write_then_fail(ctx: Ctx, inp: CreateBotInput) -> IdOutput:
        """Create a bot, then fail."""
        bots.create(ctx, inp.set_fields())
        raise NotFound("failing on purpose after a write")

    act = registry.get("write_then_fail")
    with pytest.raises(NotFound):
        engine.run(act, act.parse_input({"name": "ghost"}), account_id=engine.local_account_id())
    assert engine.execute("list_bots")["items"] == []


def _create_bots(home: str, worker: int, count: int) -> None:
    engine = Engine(Settings(home=Path(home)))
    for i in range(count):
        engine.execute("create_bot", {"name": f"w{worker}-{i}", "meta": {"w": worker}})
    engine.close()


def test_several_processes_write_one_database(tmp_path: Path) -> None:
    home = tmp_path / "shared-home"
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_create_bots, args=(str(home), w, 25)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
        assert p.exitcode == 0
    engine = Engine(Settings(home=home))
    names: set[str] = set()
    cursor = ""
    while True:
        page = engine.execute("list_bots", {"cursor": cursor, "take": 100})
        names |= {b["name"] for b in page["items"]}
        cursor = page["cursor"]
        if not cursor:
            break
    assert names == {f"w{w}-{i}" for w in range(4) for i in range(25)}
    engine.close()


def test_threads_of_one_process_queue_for_the_write_lock(tmp_path: Path) -> None:
    """Many threads writing at once all commit; at most one of them holds a write transaction at
    a time, and a transaction that ends on another thread (as a streamed action's may) hands the
    turn on."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.session() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    inside, most = 0, 0
    count = threading.Lock()

    def write(n: int) -> None:
        nonlocal inside, most
        with store.session() as session:
            # The transaction (and the turn) begins with the first statement.
            session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            with count:
                inside += 1
                most = max(most, inside)
            time.sleep(0.001)
            with count:
                inside -= 1

    threads = [threading.Thread(target=write, args=(n,)) for n in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert most == 1

    def streamed() -> Iterator[int]:
        with store.session() as session:
            session.execute(text("INSERT INTO t VALUES (-1)"))
            yield 1

    steps = streamed()
    next(steps)  # begun on this thread ...
    closer = threading.Thread(target=steps.close)  # ... ended on another
    closer.start()
    closer.join(timeout=10)
    write(40)  # the turn was handed on: this does not wait 30 s
    with store.session(write=False) as session:
        assert session.execute(text("SELECT count(*) FROM t")).scalar() == 41
    store.dispose()


def test_processes_take_the_write_turn_by_a_lock_file_a_killed_writer_gives_back(
    tmp_path: Path,
) -> None:
    """Writers of different processes queue on a lock file beside the database: while another
    process holds a write transaction the file is locked and a writer here waits; when that
    process is SIGKILLed mid-transaction the kernel frees the turn at once (not after the 30 s
    busy timeout), and what it had not committed is gone."""
    import fcntl
    import os

    db = tmp_path / "db.sqlite3"
    url = f"sqlite:///{db}"
    store = Store(url)
    with store.session() as session:
        session.execute(text("CREATE TABLE t (n INTEGER)"))
    with another_process_writing(url, "INSERT INTO t VALUES (1)") as holder:
        probe = os.open(str(db) + "-writer", os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(probe)
        done = threading.Event()

        def write() -> None:
            with store.session() as session:
                session.execute(text("INSERT INTO t VALUES (2)"))
            done.set()

        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(0.5)  # queued behind the other process
        holder.kill()  # SIGKILL
        holder.wait(timeout=10)
        started = time.monotonic()
        assert done.wait(10)
        assert time.monotonic() - started < 5
        writer.join(timeout=10)
    with store.session(write=False) as session:
        assert session.execute(text("SELECT n FROM t")).scalars().all() == [2]
    store.dispose()


def test_no_collection_starts_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    """A collection pause while holding SQLite's write lock would hold up every writer of every
    process: the collector waits until the lock is given back (openbotkit.heap)."""
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    with store.session(write=False) as session:
        session.execute(text("SELECT 1"))
        assert gc.isenabled()
    with store.session() as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), store.session() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        raise RuntimeError("rolled back")
    assert gc.isenabled()
    store.dispose()
