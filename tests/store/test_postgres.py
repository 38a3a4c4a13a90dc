"""PostgreSQL specifics: the URL forms, migrations (also from several processes at once and by
`obk db upgrade`), the pgvector and full-text schema, the job queue's notifications."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import text

from openbotkit.cli.app import cli
from openbotkit.engine import Engine
from openbotkit.ingestion import jobs
from openbotkit.store import Store, db
from openbotkit.store.db import head_revision, normalize_url
from tests.pg import PostgresServer


def test_postgresql_urls_mean_psycopg_3() -> None:
    assert normalize_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    assert normalize_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"


def _migrate(url: str) -> None:
    store = Store(url)
    store.migrate()
    store.dispose()


def test_processes_starting_at_once_migrate_a_new_database_once(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.url()
    name = "obk_race"
    store = Store(url)
    with store.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    store.dispose()
    target = postgres_server.url(name)
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_migrate, args=(target,)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    migrated = Store(target)
    with migrated.session(write=False) as session:
        assert session.scalar(text("SELECT version_num FROM alembic_version")) == head_revision()
        assert session.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
        indexes = set(session.scalars(text("SELECT indexname FROM pg_indexes")))
        kind = session.scalar(
            text("SELECT data_type FROM information_schema.columns WHERE column_name = 'tsv'")
        )
    migrated.dispose()
    assert {"ix_record_vectors_hnsw_384", "pk_lexical_postings"} <= indexes
    assert kind == "tsvector"


def test_db_upgrade_applies_migrations_before_first_use(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    store = Store(postgres_server.url())
    with store.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("CREATE DATABASE obk_upgrade"))
    store.dispose()
    plain = postgres_server.url("obk_upgrade").replace("postgresql+psycopg://", "postgresql://")
    env = {"OBK_HOME": str(tmp_path / "home"), "OBK_DATABASE_URL": plain}
    result = CliRunner().invoke(cli, ["db", "upgrade"], env=env)
    assert result.exit_code == 0, result.output
    assert f"schema at revision {head_revision()}" in result.output
    again = CliRunner().invoke(cli, ["db", "upgrade"], env=env)  # nothing left to do
    assert again.exit_code == 0 and f"revision {head_revision()}" in again.output


def test_db_upgrade_on_the_embedded_default(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["db", "upgrade"], env={"OBK_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "sqlite:///" in result.output and f"revision {head_revision()}" in result.output


def test_jobs_are_claimed_once_by_concurrent_workers(engine: Engine) -> None:
    account = engine.local_account_id()
    with engine.store.session() as session:
        queued = {jobs.enqueue_sync(session, account, f"f{i}", "d").id for i in range(30)}
    claimed: list[str] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        while True:
            with engine.store.session() as session:
                job = jobs.claim_next_job(session, name, int(time.time() * 1000), 60_000)
                if job is None:
                    return
                with lock:
                    claimed.append(job.id)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claimed) == sorted(queued)


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_an_enqueue_wakes_a_waiting_worker(engine: Engine) -> None:
    """The notification, not the timeout, ends the wait (the timeout is a minute)."""
    account = engine.local_account_id()
    signal = jobs.listen(engine.store)
    stop = threading.Event()
    signal.wait(stop, 0.01)  # subscribes
    woke = threading.Event()

    def wait() -> None:
        signal.wait(stop, 60)
        woke.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        with engine.store.session() as session:
            jobs.enqueue_sync(session, account, "file", "dataset")
        assert woke.wait(30), "the worker was not woken by the enqueue"
    finally:
        stop.set()
        waiter.join(70)
        signal.close()


def _backend_pid(store: Store) -> int:
    with store.session(write=False) as session:
        return int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _count_pings(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The pings the read pool (what `_backend_pid` uses) sends from now on (each still goes
    to the server)."""
    dialect = store.read_engine.dialect
    ping = dialect.do_ping
    pings: list[object] = []

    def counted(dbapi_conn: object) -> bool:
        pings.append(dbapi_conn)
        return ping(dbapi_conn)

    monkeypatch.setattr(dialect, "do_ping", counted)
    return pings


def test_a_pooled_connection_the_server_closed_is_replaced_once_idle(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection idle past PING_AFTER_IDLE_S is pinged at checkout: one the server closed
    (a restart, a failover, an idle timeout) is swapped for a new one, and the unit succeeds."""
    store = Store(postgres_server.url())
    other = Store(postgres_server.url())
    pid = _backend_pid(store)
    with other.session() as session:
        assert session.execute(text(f"SELECT pg_terminate_backend({pid})")).scalar_one()
    pings = _count_pings(store, monkeypatch)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)
    assert _backend_pid(store) != pid
    assert pings  # the closed one was found by its ping, not by a failed unit
    store.dispose()
    other.dispose()


def test_a_connection_in_steady_use_is_not_pinged(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within PING_AFTER_IDLE_S of its last use a connection is handed out as it is: no round
    trip is spent on a ping per unit of work."""
    store = Store(postgres_server.url())
    pid = _backend_pid(store)
    pings = _count_pings(store, monkeypatch)
    for _ in range(3):
        assert _backend_pid(store) == pid
    assert pings == []
    store.dispose()


def test_reads_run_without_a_transaction_and_writes_within_one(
    postgres_server: PostgresServer,
) -> None:
    """A unit that only reads costs no BEGIN and COMMIT round trips: its connection is in
    autocommit, and no transaction is left open after a statement. Writes keep theirs."""
    store = Store(postgres_server.url())
    with store.session(write=False) as session:
        session.execute(text("SELECT 1"))
        dbapi = session.connection().connection.dbapi_connection
        assert dbapi.autocommit
        assert dbapi.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    raw = store.read_engine.raw_connection()  # what a unit's plain reads run on
    assert raw.dbapi_connection.autocommit
    raw.close()
    with store.session() as session:
        session.execute(text("SELECT 1"))
        dbapi = session.connection().connection.dbapi_connection
        assert not dbapi.autocommit
        assert dbapi.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    store.dispose()


def test_every_statement_is_planned_for_its_own_values(postgres_server: PostgresServer) -> None:
    """No generic plan: one cannot know how large the dataset being searched is."""
    store = Store(postgres_server.url())
    for write in (True, False):
        with store.session(write=write) as session:
            assert session.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
    store.dispose()
