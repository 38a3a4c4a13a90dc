"""The store: one engine per database, sessions per action, migrations applied on first use.

SQLite runs in WAL mode with a busy timeout so several processes (CLI, server workers, ingestion
workers) share one file. Write transactions start with BEGIN IMMEDIATE: a deferred transaction
that later upgrades to a write lock can fail at once with "database is locked", while an
immediate one waits its turn.
"""

from __future__ import annotations

import fcntl
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine.url import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

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


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class Store:
    """Engines and sessions for one database URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.dialect = make_url(url).get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        if self.is_sqlite:
            path = make_url(url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.write_engine = _sqlite_engine(url, immediate=True)
            self.read_engine = _sqlite_engine(url, immediate=False)
        else:
            self.write_engine = create_engine(url, pool_pre_ping=True)
            self.read_engine = self.write_engine
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
            command.upgrade(cfg, "head")

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        self.migrate()
        factory = self._write if write else self._read
        with factory() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        self.read_engine.dispose()
