"""One action's unit of work: plain reads on the pooled driver connection, and an ORM Session
only when something asks for one.

A small API read (a page of bots, one bot) spent most of its time in SQLAlchemy's per-call
machinery, not in SQLite: opening a Session, checking a Connection out, building the statement,
computing its cache key, wrapping the result. Here a statement is built and compiled once per
dialect (`Query`), and run on the driver's own cursor with the same bound-value defaults and the
same result processors SQLAlchemy applies, so the values are what a Session would have returned.

Transactions are as before: a unit that opens a Session commits it when the block ends and rolls
it back if it raises. Plain reads before that run each as their own statement (SQLite in
autocommit, PostgreSQL in one implicit transaction rolled back on release): every statement sees
committed data, as PostgreSQL's default READ COMMITTED level gives the Session path too. A unit
that needs a Session after plain reads releases the driver connection first, so one unit never
holds two pooled connections.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy import JSON, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Select

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import Dialect
    from sqlalchemy.pool import PoolProxiedConnection
    from sqlalchemy.types import TypeEngine

Row = dict[str, Any]


class Compiled:
    """One statement compiled for one dialect: SQL text, parameter order, result processors."""

    __slots__ = (
        "_dialect",
        "_types",
        "defaults",
        "keys",
        "names",
        "positional",
        "processors",
        "sql",
    )

    def __init__(self, stmt: Select[Any], dialect: Dialect) -> None:
        compiled = stmt.compile(dialect=dialect)
        self.sql = str(compiled)
        if "POSTCOMPILE" in self.sql:  # values rendered per call: not a compiled-once statement
            raise ValueError(f"statement needs per-call rendering on {dialect.name}: {self.sql}")
        self.positional = bool(compiled.positional)
        self.defaults: dict[str, Any] = dict(compiled.params)
        self.names: tuple[str, ...] = tuple(
            compiled.positiontup if self.positional and compiled.positiontup else self.defaults
        )
        self.keys: tuple[str, ...] = tuple(str(col.key) for col in stmt.selected_columns)
        self._types = tuple(col.type for col in stmt.selected_columns)
        self._dialect = dialect
        # Some processors depend on the type the driver reports (PostgreSQL numerics): built
        # from the first execution's cursor description, then kept.
        self.processors: tuple[tuple[int, Callable[[Any], Any]], ...] | None = None

    def processors_for(self, description: Sequence[Sequence[Any]]) -> None:
        dialect = self._dialect
        self.processors = tuple(
            (i, _faster(type_, proc))
            for i, (type_, column) in enumerate(zip(self._types, description, strict=True))
            if (proc := type_.dialect_impl(dialect).result_processor(dialect, column[1]))
            is not None
        )

    def parameters(self, values: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        merged = {**self.defaults, **values}
        if self.positional:
            return tuple(merged[name] for name in self.names)
        return {name: merged[name] for name in self.names}

    def to_dicts(self, raw: Sequence[Sequence[Any]]) -> list[Row]:
        keys, processors = self.keys, self.processors or ()
        out = []
        for values in raw:
            row = dict(zip(keys, values, strict=True))
            for i, proc in processors:
                key = keys[i]
                row[key] = proc(row[key])
            out.append(row)
        return out


def _faster(type_: TypeEngine[Any], proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON column stored as text (SQLite) decodes with orjson, many times faster than the
    standard library's decoder SQLAlchemy calls; what orjson refuses (NaN, integers past 64
    bits, which Python's json writes) falls back to SQLAlchemy's own processor."""
    if not isinstance(type_, JSON):
        return proc

    def decode(value: Any) -> Any:
        if isinstance(value, str | bytes):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                pass
        return proc(value)

    return decode


class Query:
    """A SELECT built once (its varying values as named `bindparam`s) and compiled once per
    dialect on first use; `Unit.rows` runs it."""

    __slots__ = ("_build", "_compiled")

    def __init__(self, build: Callable[[], Select[Any]]) -> None:
        self._build = build
        self._compiled: dict[str, Compiled] = {}

    def compiled(self, dialect: Dialect) -> Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            found = self._compiled[dialect.name] = Compiled(self._build(), dialect)
        return found


class Unit:
    """What one action runs in (see the module doc). `session` opens on first use."""

    __slots__ = ("_engine", "_factory", "_raw", "_reader", "_session", "_write")

    def __init__(
        self,
        engine: Engine,
        factory: sessionmaker[Session],
        *,
        write: bool,
        reader: Callable[[], Any] | None = None,
    ) -> None:
        self._engine = engine
        self._factory = factory
        self._write = write
        # The calling thread's own driver connection for plain reads (SQLite: see Readers),
        # else one checked out of the pool and held until the unit ends.
        self._reader = reader
        self._session: Session | None = None
        self._raw: PoolProxiedConnection | None = None

    @classmethod
    def over(cls, session: Session) -> Unit:
        """A unit around a Session its caller opened and will end (services that run outside
        an action, such as the job worker)."""
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        unit = cls(engine, sessionmaker(engine), write=True)
        unit._session = session
        return unit

    @property
    def session(self) -> Session:
        if self._session is None:
            self._release_raw()
            session = self._factory()
            session.begin()
            self._session = session
        return self._session

    @property
    def session_open(self) -> bool:
        """Whether something asked for the ORM Session (plain reads never do)."""
        return self._session is not None

    @property
    def dialect(self) -> Dialect:
        return self._engine.dialect

    def rows(self, query: Query, **values: Any) -> list[Row]:
        """The rows of `query` with these bound values, as dicts of column key -> value."""
        compiled = query.compiled(self._engine.dialect)
        params = compiled.parameters(values)
        if self._session is not None or self._write:
            # Inside the Session's transaction: a write (on SQLite, BEGIN IMMEDIATE covers its
            # reads too), or a read that already needed the ORM.
            dbapi: Any = self.session.connection().connection.dbapi_connection
        elif self._reader is not None:
            dbapi = self._reader()
        else:
            if self._raw is None:
                self._raw = self._engine.raw_connection()
            dbapi = self._raw.dbapi_connection
        cursor = dbapi.cursor()
        try:
            cursor.execute(compiled.sql, params)
            raw = cursor.fetchall()
            if compiled.processors is None:
                compiled.processors_for(cursor.description)
        finally:
            cursor.close()
        return compiled.to_dicts(raw)

    def _release_raw(self) -> None:
        if self._raw is not None:
            raw, self._raw = self._raw, None
            raw.close()  # back to the pool, which rolls back what a driver left open

    def finish(self, *, ok: bool) -> None:
        """Commit (ok) or roll back the Session if one was opened; release every connection."""
        try:
            if self._session is not None:
                session, self._session = self._session, None
                try:
                    if ok:
                        session.commit()
                    else:
                        session.rollback()
                finally:
                    session.close()
        finally:
            self._release_raw()


class Readers:
    """One autocommit driver connection per thread for plain reads of a SQLite file.

    A pool checkout and checkin cost more than the read itself. SQLite connections are cheap to
    hold (a file handle; in autocommit an idle one holds no snapshot, so checkpoints go on), and
    a thread runs one statement at a time, so each thread keeps its own, made by the read
    engine's pool (its connect hooks set the same pragmas) and detached from it. The unit asks
    for it per statement: a streamed read may move between threads.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[Any] = []

    def __call__(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            fairy = self._engine.raw_connection()
            fairy.detach()
            conn = self._local.conn = fairy.dbapi_connection
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            conn.close()
        self._local = threading.local()
