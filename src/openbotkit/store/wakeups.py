"""Wake-ups for idle queue consumers, one implementation per database, chosen by dialect.

A producer calls `notify` inside the transaction that adds work; a consumer waits on a
`Listener` between polls. PostgreSQL sends a NOTIFY (delivered when that transaction commits)
and a listener LISTENs on a connection of its own, so an idle worker on any machine starts at
once. SQLite has no notification between processes: a listener in the producer's own process
(`obk serve`'s worker, the CLI's) is woken when the transaction commits, one in another process
waits its poll interval. The SQL that only PostgreSQL has lives here, nowhere else.

Consumers keep polling on every database: work that becomes due later (a retry after backoff,
an expired lease) sends no notification.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Protocol

from sqlalchemy import Engine, event, text
from sqlalchemy.orm import Session

_CHANNEL = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class Listener(Protocol):
    def wait(self, stop: threading.Event, timeout_s: float) -> None:
        """Return after a notification, `stop`, or `timeout_s` seconds, whichever comes first."""

    def close(self) -> None: ...


class Wakeups(Protocol):
    def notify(self, session: Session, channel: str) -> None:
        """Wake the listeners of `channel` when the session's transaction commits."""

    def listen(self, engine: Engine, channel: str) -> Listener:
        """A listener for `channel` on the database `engine` connects to."""


def _check(channel: str) -> str:
    # LISTEN takes an identifier, not a parameter: only plain lower-case names are allowed.
    if not _CHANNEL.fullmatch(channel):
        raise ValueError(f"channel {channel!r}: use lower-case letters, digits and _")
    return channel


# How often a waiting in-process listener looks at its `stop` (it waits on its own event).
STOP_CHECK_S = 0.1


class _Local:
    """The listeners of this process, by (database, channel): a commit that notified a channel
    sets each one's event, which stays set until its wait takes it (like a queued NOTIFY)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[tuple[str, str], set[threading.Event]] = {}

    def add(self, key: tuple[str, str]) -> threading.Event:
        woken = threading.Event()
        with self._lock:
            self._events.setdefault(key, set()).add(woken)
        return woken

    def remove(self, key: tuple[str, str], woken: threading.Event) -> None:
        with self._lock:
            self._events.get(key, set()).discard(woken)

    def fire(self, key: tuple[str, str]) -> None:
        with self._lock:
            for woken in self._events.get(key, ()):
                woken.set()


class _LocalListener:
    """Waits for a commit in this process that notified its channel, the poll interval, or
    `stop`, whichever comes first."""

    def __init__(self, local: _Local, key: tuple[str, str]) -> None:
        self._local, self._key = local, key
        self._woken = local.add(key)

    def wait(self, stop: threading.Event, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._woken.wait(min(left, STOP_CHECK_S)):
                self._woken.clear()
                return

    def close(self) -> None:
        self._local.remove(self._key, self._woken)


class PollingWakeups:
    """SQLite: no notification between processes; within one, a commit wakes its listeners."""

    def __init__(self) -> None:
        self._local = _Local()

    def notify(self, session: Session, channel: str) -> None:
        bind = session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
        key = (str(engine.url), _check(channel))
        event.listen(session, "after_commit", lambda _: self._local.fire(key), once=True)

    def listen(self, engine: Engine, channel: str) -> Listener:
        return _LocalListener(self._local, (str(engine.url), _check(channel)))


class _PgListener:
    """LISTEN on a connection of its own (autocommit: notifications arrive between queries),
    opened on the first wait. A broken connection costs one poll interval, then reconnects."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self._url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._channel = channel
        self._conn: Any = None

    def wait(self, stop: threading.Event, timeout_s: float) -> None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            for _ in self._conn.notifies(timeout=timeout_s, stop_after=1):
                break
        except Exception:  # the connection broke: poll this time, reconnect next time
            self.close()
            stop.wait(timeout_s)

    def _connect(self) -> Any:
        import psycopg

        conn = psycopg.connect(self._url, autocommit=True)
        conn.execute(f"LISTEN {self._channel}")
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None


class PostgresWakeups:
    """PostgreSQL: NOTIFY in the producer's transaction, LISTEN in each consumer."""

    def notify(self, session: Session, channel: str) -> None:
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": _check(channel)})

    def listen(self, engine: Engine, channel: str) -> Listener:
        return _PgListener(engine, _check(channel))


WAKEUPS: dict[str, Wakeups] = {"sqlite": PollingWakeups(), "postgresql": PostgresWakeups()}


def for_dialect(dialect: str) -> Wakeups:
    """The wake-ups of a database by its SQLAlchemy dialect name (`sqlite`, `postgresql`)."""
    found = WAKEUPS.get(dialect)
    if found is None:
        raise ValueError(f"no wake-ups for database dialect {dialect!r}")
    return found


def notify(session: Session, channel: str) -> None:
    """Wake `channel`'s listeners when the session's transaction commits (if the database can)."""
    for_dialect(session.get_bind().dialect.name).notify(session, channel)
