"""Wake-ups for idle queue consumers on both databases: PostgreSQL's arrive with the commit of
the transaction that sent them (never with a rollback, never on another channel); on SQLite
only listeners in the sending process are woken, the same way, and one with nothing sent waits
out its poll interval, or less when it is stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from openbotkit.settings import Settings
from openbotkit.store import Store
from openbotkit.store.wakeups import Listener, for_dialect

CHANNEL = "obk_test_wakeups"


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.resolved_database_url)
    s.migrate()
    yield s
    s.dispose()


def waited(listener: Listener, timeout_s: float, stop: threading.Event | None = None) -> float:
    started = time.monotonic()
    listener.wait(stop or threading.Event(), timeout_s)
    return time.monotonic() - started


def woken_by(store: Store, send: str, *, commit: bool = True) -> bool:
    """Whether a listener on CHANNEL waiting up to 30 s is woken by a notice on `send`."""
    listener = store.listen(CHANNEL)
    listener.wait(threading.Event(), 0.01)  # subscribes
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: (listener.wait(threading.Event(), 3), woke.set()))
    try:
        if commit:
            with store.session() as session:
                for_dialect(store.dialect).notify(session, send)
        else:
            with store.session() as session:
                for_dialect(store.dialect).notify(session, send)
                session.rollback()
        started = time.monotonic()
        waiter.start()
        waiter.join(10)
        return woke.is_set() and time.monotonic() - started < 2.5
    finally:
        listener.close()


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_postgresql_wakes_on_commit_only_and_on_its_channel(store: Store) -> None:
    assert woken_by(store, CHANNEL)
    assert not woken_by(store, CHANNEL, commit=False)
    assert not woken_by(store, "obk_some_other_channel")


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_sqlite_wakes_this_process_on_commit_only_and_else_waits_its_interval(
    store: Store,
) -> None:
    # obk serve's own worker, the CLI's: a job queued in this process wakes it at once.
    assert woken_by(store, CHANNEL)
    assert not woken_by(store, CHANNEL, commit=False)
    assert not woken_by(store, "obk_some_other_channel")
    listener = store.listen(CHANNEL)
    assert waited(listener, 0.3) >= 0.29
    stop = threading.Event()
    stop.set()
    assert waited(listener, 30, stop) < 5  # a stopped worker does not sit out its interval
    listener.close()


def test_a_channel_must_be_a_plain_name(store: Store) -> None:
    with pytest.raises(ValueError, match="channel"):
        store.listen("jobs; DROP TABLE jobs")
    with pytest.raises(ValueError, match="channel"), store.session() as session:
        for_dialect(store.dialect).notify(session, "Jobs-Channel")


def test_an_unknown_database_has_no_wakeups() -> None:
    with pytest.raises(ValueError, match="mysql"):
        for_dialect("mysql")
