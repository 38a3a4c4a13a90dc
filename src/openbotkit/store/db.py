"""The store: one engine per database, sessions per action, migrations applied on first use.

Two databases: SQLite (the embedded default, one file) and PostgreSQL (`postgresql://...`, through
psycopg 3), where several machines share one database and migrations are serialised by an
advisory lock instead of a lock file.

SQLite runs in WAL mode with a busy timeout so several processes (CLI, server workers, ingestion
workers) share one file. Write transactions start with BEGIN IMMEDIATE: a deferred transaction
that later upgrades to a write lock can fail at once with "database is locked", while an
immediate one waits its turn.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from openbotkit import heap
from openbotkit.store.unit import Readers, Unit
from openbotkit.store.wakeups import Listener, for_dialect

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION = re.compile(r'^(down_revision|revision)\b[^=]*=\s*"([^"]*)"', re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest migration's id, read from the files without importing Alembic (which costs
    more than a whole connector call): the one revision no other names as its parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for kind, rev in _REVISION.findall(path.read_text()):
            (revisions if kind == "revision" else parents).add(rev)
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"migrations must have one head, found {sorted(heads)}")
    return heads.pop()


# How long a SQLite writer waits for another one before "database is locked".
BUSY_TIMEOUT_S = 30

# A SQLite writer that has waited this long for its turn tells its thread's watcher, if any:
# under 50 clients on 2 API processes no wait reached it (at 0.1 s, 17 in 30 s did).
WRITER_PATIENCE_S = 0.25
_watchers = threading.local()

# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
PING_AFTER_IDLE_S = 5.0
IDLE_SINCE = "obk_idle_since"


@contextmanager
def watching_writer_waits(watcher: Callable[[bool], None]) -> Iterator[None]:
    """Within the block, a write transaction begun on this thread that waits longer than
    WRITER_PATIENCE_S for SQLite's write turn (another transaction, maybe of another process,
    holds it) calls `watcher(True)`, and `watcher(False)` once it has the turn. The server
    widens its admission meanwhile, so requests queued behind stalled writers still run."""
    _watchers.current = watcher
    try:
        yield
    finally:
        _watchers.current = None


def _wait_for(take: Callable[[float], bool], timeout: float) -> bool:
    """`take(timeout)`, telling this thread's watcher when it takes longer than its patience."""
    watcher: Callable[[bool], None] | None = getattr(_watchers, "current", None)
    if watcher is None:
        return take(timeout)
    if take(min(WRITER_PATIENCE_S, timeout)):
        return True
    watcher(True)
    try:
        return take(max(0.0, timeout - WRITER_PATIENCE_S))
    finally:
        watcher(False)


# pg_advisory_xact_lock key held while migrating (any constant; "obk" in ASCII).
MIGRATION_LOCK_KEY = 0x6F626B


def normalize_url(url: str) -> str:
    """`postgresql://` means psycopg 3 here (SQLAlchemy's default PostgreSQL driver is psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed.render_as_string(hide_password=False)
    return url


def _postgres_engine(url: str, *, autocommit: bool = False) -> Engine:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "OBK_DATABASE_URL names PostgreSQL, but its driver is not installed: "
            "pip install 'openbotkit[postgres]'"
        ) from exc
    # Reads run in autocommit: no BEGIN and COMMIT round trips around a unit that only reads.
    # Its statements see what they would in a transaction: PostgreSQL's READ COMMITTED takes a
    # new snapshot per statement either way (a statement that must agree with itself, as the
    # BM25 query does, is one statement).
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_recycle=1800,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )

    # Every statement is planned for its own values. After five runs of a prepared statement
    # (psycopg prepares what it runs often) PostgreSQL may switch to one generic plan for all
    # values, and a generic plan cannot know how large the dataset being searched is: measured
    # one search at a time on a dataset of 540 records, a search took 14-16 ms of the server's
    # CPU with generic plans and 3-4 ms with its own (statements are still parsed once; only
    # planning repeats).
    @event.listens_for(engine, "connect")
    def _plan_for_each_values(dbapi_conn: Any, _record: Any) -> None:
        with dbapi_conn.cursor() as cur:
            cur.execute("SET plan_cache_mode = force_custom_plan")
        dbapi_conn.commit()

    # A connection the server (or a failover, or an idle timeout) closed is replaced, not handed
    # out: one that has been idle for a while is pinged as it is checked out. Not every one, as
    # pool_pre_ping would: under load a connection is back in use within milliseconds, and the
    # ping was a round trip per unit of work (9% of the API's samples in a profile taken
    # under bench/load.py --postgres). A connection that dies between two close uses fails
    # that one request, as a request in flight does; the pool then replaces every connection
    # opened before.
    @event.listens_for(engine.pool, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        if time.monotonic() - record.info.get(IDLE_SINCE, 0.0) <= PING_AFTER_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out another (a new one if need be).
            raise DisconnectionError(f"a pooled connection was closed: {exc}") from exc

    @event.listens_for(engine.pool, "checkin")
    def _note_idle(_dbapi_conn: Any, record: Any) -> None:
        if record is not None:
            record.info[IDLE_SINCE] = time.monotonic()

    return engine


class WriterTurn:
    """A lock file beside a SQLite database that its writing processes take in turn.

    flock, not SQLite's lock: a process waiting here is woken within half a millisecond of the
    file coming free instead of sleeping out a busy-handler backoff. The lock belongs to the
    open file, so each process opens its own (a forked child, such as a warm CLI call, reopens
    it) and the kernel releases it when a process dies, even by SIGKILL."""

    def __init__(self, database: str | None) -> None:
        self.path = database + "-writer" if database and database != ":memory:" else None
        self._fd = -1
        self._pid = 0

    def take(self, timeout: float) -> bool:
        """Wait for the turn up to `timeout` seconds; False (not taken) past it, or when the
        database is in memory (no other process can write it)."""
        if self.path is None:
            return False
        if self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.0005)

    def give_back(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
        cur.close()

    if not immediate:

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

        return engine

    # Writers queue before BEGIN IMMEDIATE, on a lock in this process and then on a lock file
    # that every process writing this database takes: SQLite's own busy handler makes a waiting
    # writer sleep and retry (up to 100 ms a try), so writers spent most of their time asleep
    # while the file was free (measured with 2 API processes under 50 clients: BEGIN waited
    # 131-236 ms at p99 with the in-process lock alone, 12 ms with the lock file too). Both are
    # taken when a connection begins a write transaction and given back when it returns to the
    # pool (a Session does that as it commits or rolls back). A writer that is not openbotkit
    # (the sqlite3 shell) still meets the busy timeout.
    lock = threading.Lock()
    turn = WriterTurn(make_url(url).database)
    held = "obk_write_lock"

    @event.listens_for(engine, "begin")
    def _on_write_begin(conn: Any) -> None:
        # Never wait forever (a thread nesting two write transactions, a writer stopped in a
        # debugger): past the busy timeout, BEGIN IMMEDIATE decides as it did without the locks.
        if held not in conn.info and _wait_for(lambda t: lock.acquire(timeout=t), BUSY_TIMEOUT_S):
            # Whether the file's turn (other processes' writers) is taken too.
            conn.info[held] = turn.path is not None and _wait_for(turn.take, BUSY_TIMEOUT_S)
            # A collection pause now would hold up every writer (see openbotkit.heap).
            heap.pause()
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.pool, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: Any) -> None:
        if record is None or held not in record.info:
            return
        if record.info.pop(held):
            turn.give_back()
        lock.release()
        heap.resume()

    return engine


def _create_private(path: Path) -> None:
    """Make a new database file readable by this user only (0600) before SQLite opens it;
    SQLite gives its -wal and -shm files the database file's mode. An existing file is left
    as it is."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)


class Store:
    """Engines and sessions for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url = normalize_url(url)
        self.dialect = make_url(url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        if self.is_sqlite:
            path = make_url(url).database
            if path and path != ":memory:" and not path.startswith("file:"):
                Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                _create_private(Path(path))
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
            self._readers: Readers | None = Readers(self.read_engine)
        else:
            self.write_engine = _postgres_engine(url)
            self.read_engine = _postgres_engine(url, autocommit=True)
            # No connection is held per thread past the unit that uses it: a pooled one is
            # cheap to check out, and pinged first when it has been idle.
            self._readers = None
        self._write = sessionmaker(self.write_engine, expire_on_commit=False)
        self._read = sessionmaker(self.read_engine, expire_on_commit=False)
        self._migrated = False

    def migrate(self) -> None:
        """Bring the schema to the newest revision; safe when several processes start at once.

        A database already at the newest revision costs one SELECT: Alembic is imported only
        when there is something to apply."""
        if self._migrated:
            return
        if self._at_head():
            self._migrated = True
            return
        lock_path = self._lock_path()
        if lock_path is None:
            self._upgrade()
        else:
            with open(lock_path, "a+") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                try:
                    self._upgrade()
                finally:
                    fcntl.flock(lock, fcntl.LOCK_UN)
        self._migrated = True

    def _lock_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        path = make_url(self.url).database
        if not path or path == ":memory:":
            return None
        return Path(path + ".migrate.lock")

    def _at_head(self) -> bool:
        try:
            with self.read_engine.connect() as conn:
                current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        except DBAPIError:  # no version table yet: a new database
            return False
        return [row[0] for row in current] == [head_revision()]

    def _upgrade(self) -> None:
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self.write_engine.connect() as conn:
            cfg.attributes["connection"] = conn
            if self.is_sqlite:
                command.upgrade(cfg, "head")
                return
            # One transaction: the lock, then every migration (PostgreSQL has transactional
            # DDL); a process that waited on the lock finds the schema current and does nothing.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            command.upgrade(cfg, "head")
            conn.commit()

    def upgrade(self) -> str | None:
        """Apply pending migrations now (`obk db upgrade`); returns the revision reached."""
        self._migrated = False
        self.migrate()
        with self.write_engine.connect() as conn:
            found = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return str(found) if found is not None else None

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        self.migrate()
        factory = self._write if write else self._read
        with factory() as session, session.begin():
            yield session

    def listen(self, channel: str) -> Listener:
        """A way to wait for `channel`'s wake-ups on this database (store/wakeups.py)."""
        return for_dialect(self.dialect).listen(self.write_engine, channel)

    @contextmanager
    def unit(self, *, write: bool = True) -> Iterator[Unit]:
        """One action's unit of work (store/unit.py): plain reads without a Session, and a
        Session on first use, committed when the block ends and rolled back if it raises."""
        self.migrate()
        if write:
            unit = Unit(self.write_engine, self._write, write=True)
        else:
            unit = Unit(self.read_engine, self._read, write=False, reader=self._readers)
        ok = False
        try:
            yield unit
            ok = True
        finally:
            unit.finish(ok=ok)

    def dispose(self) -> None:
        if self._readers is not None:
            self._readers.close()
        self.write_engine.dispose()
        self.read_engine.dispose()
