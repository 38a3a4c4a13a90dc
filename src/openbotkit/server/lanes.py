"""How much one server process works on at once: requests admitted in arrival order, and a few
threads per kind of work.

Python threads take turns at one interpreter lock. With Starlette's shared pool of 40 threads and
every request let in as it came, a write transaction that needs about a millisecond of CPU held
SQLite's write lock for 7 ms on average under 50 clients (2 API processes): between statements
it waited its turn at the interpreter behind dozens of other requests, and every other writer
waited behind it; the requests that need more CPU (a create that embeds, a search) shared the
cores with everything else and came last (p99 of the mix 0.9 s, of a create 1.1 s).

Here a process admits a few requests at a time, first come first served (`admit`); the others
wait in the queue, where they cost nothing, so each waits about as long as any other and runs
quickly once admitted. Admitted work that leaves the event loop runs in its lane: writes in one,
reads in another, so writers queued for SQLite's single writer never hold up searches. Work
that lasts seconds (a completion's generation, streamed or not; an evaluation, declared
`long=True`) runs outside admission, in a third lane; and a request's body is read before
admission, so neither a slow upload nor a long answer holds a place others wait for. And when a
writer has waited long for SQLite's write lock (another process's long transaction holds it),
admission widens until the writers get their turn, so the places taken by stalled writers do not
stop the reads queued behind them.

On PostgreSQL a thread spends most of a read waiting on the network, not on the interpreter,
and writers do not queue for one lock: the lanes are wider.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import ParamSpec, TypeVar

import anyio.from_thread
import anyio.to_thread
from anyio import CapacityLimiter

from openbotkit.actions.registry import Effect
from openbotkit.store.db import watching_writer_waits

P = ParamSpec("P")
T = TypeVar("T")

# Threads per lane (reads, writes) when OBK_SERVER_THREADS is not set. PostgreSQL's threads
# also wait on round trips, so it has more; past that, each is one more taker of the process's
# interpreter lock and one more hand-off (bench/load.py --postgres on 2 cores, similar machine
# speed: p99 263 ms with 4, 361-368 ms with 8).
SQLITE_THREADS = 2
POSTGRES_THREADS = 4
# Requests admitted at once per lane thread: enough to keep both lanes and the event loop busy.
ADMITTED_PER_THREAD = 3
# Requests admitted at once while a writer is stalled (see Lanes._writer_stalled).
STALLED_ADMISSION = 40
# Long work (a generation waits on the model, one at a time per process, or on the client; an
# evaluation runs its searches): the lane only bounds how many run at once.
LONG_THREADS = 16


class Lanes:
    """Admission and the read, write and long lanes of one server process."""

    def __init__(self, threads: int) -> None:
        self.admitted = threads * ADMITTED_PER_THREAD
        self.admit = CapacityLimiter(self.admitted)
        self.read = CapacityLimiter(threads)
        self.write = CapacityLimiter(threads)
        self.long = CapacityLimiter(LONG_THREADS)
        self._stalled = 0  # writers now waiting past their patience for SQLite's write turn

    @classmethod
    def for_store(cls, is_sqlite: bool, threads: int | None) -> Lanes:
        return cls(threads or (SQLITE_THREADS if is_sqlite else POSTGRES_THREADS))

    def for_effect(self, effect: Effect) -> CapacityLimiter:
        return self.read if effect is Effect.READ else self.write

    async def run(
        self, lane: CapacityLimiter, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(*args, **kwargs)` on a thread of `lane`, once the lane has room."""

        def work() -> T:
            with watching_writer_waits(self._tell):
                return fn(*args, **kwargs)

        return await anyio.to_thread.run_sync(work, limiter=lane)

    def _tell(self, stalled: bool) -> None:
        """On a lane's thread: a writer stalled, or got its turn after stalling."""
        anyio.from_thread.run_sync(self._writer_stalled, stalled)

    def _writer_stalled(self, stalled: bool) -> None:
        """While any writer is stalled (another transaction, perhaps of another process, holds
        SQLite's write lock for long: a big file's records, a writer stopped), admission is as
        wide as Starlette's own thread pool, so the reads queued behind the stalled writers and
        those that arrive meanwhile are served; it narrows again once no writer is stalled."""
        self._stalled += 1 if stalled else -1
        self.admit.total_tokens = STALLED_ADMISSION if self._stalled else self.admitted

    @staticmethod
    async def iterate(lane: CapacityLimiter, items: Iterator[T]) -> AsyncIterator[T]:
        """Each next item of `items` taken on a thread of `lane`."""
        done = object()
        while (item := await anyio.to_thread.run_sync(next, items, done, limiter=lane)) is not done:
            yield item  # type: ignore[misc]
