"""How much one server process works on at once: requests admitted in arrival order, and a few
threads per kind of work.

Python threads take turns at one interpreter lock. With Starlette's shared pool of 40 threads and
every request let in as it came, a write transaction that needs about a millisecond of CPU held
SQLite's write lock for 7 ms on average under 50 clients (2 API processes): between statements
it waited its turn at the interpreter behind dozens of other requests, and every other writer
waited behind it; the requests that need more CPU (a create that embeds, a search) shared the
cores with everything else and came last (p99 of the mix 0.9 s, of a create 1.1 s).

Here a process admits as many requests at a time as a lane has threads, first come first
served (`admit`); the others wait in the queue, where they cost nothing, so each waits about as
long as any other and runs quickly once admitted. Admitting more (three per thread, as before)
only let more requests share the cores at once, which spread their times: under bench/load.py
p99 was 2.1-2.5 times p50 with three per thread and 1.7-2.0 times with one, at the same
throughput. Admitted work that leaves the event loop runs in its lane: writes in one, reads in
another. Work that lasts seconds (a completion's generation, streamed or not; an evaluation,
declared `long=True`) runs outside admission, in a third lane; and a request's body is read
before admission, so neither a slow upload nor a long answer holds a place others wait for. And
when a writer has waited long for SQLite's write lock (another process's long transaction holds
it), admission widens until the writers get their turn: the stalled writers queue in their lane,
and the reads queued behind them run in theirs.

On PostgreSQL a thread spends most of a read waiting on the network, not on the interpreter,
and writers do not queue for one lock: the lanes are wider.

A request that makes the server fetch a URL (an upload by URL, a completion's attachments, a
dry-run sync that asks the file's URL again) waits on a remote server it does not control: two
uploads from a server dripping a byte at a time once held both admission places for as long as
it dripped, and every other request of the process waited. Such requests run outside admission
in a fourth lane, at most `OBK_FETCHES_PER_ACCOUNT` of one account's at once (the others wait
their turn, in arrival order), each ended by the fetch deadline (OBK_FETCH_TIMEOUT_S).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import ParamSpec, TypeVar

from anyio import CancelScope, CapacityLimiter

from openbotkit.actions.registry import Effect
from openbotkit.store.db import watching_writer_waits

P = ParamSpec("P")
T = TypeVar("T")

# Threads per lane (reads, writes) when OBK_SERVER_THREADS is not set, and so requests admitted
# at once. PostgreSQL's threads also wait on round trips, so it has one more; past that, each is
# one more taker of the process's interpreter lock and one more request sharing the cores
# (bench/load.py --postgres --no-completion on 2 cores, alternated: p99 227-264 ms with 3,
# 243-281 with 4, 275-280 with 6).
SQLITE_THREADS = 2
POSTGRES_THREADS = 3
# Requests admitted at once while a writer is stalled (see Lanes._writer_stalled).
STALLED_ADMISSION = 40
# Long work (a generation waits on the model, one at a time per process, or on the client; an
# evaluation runs its searches): the lane only bounds how many run at once.
LONG_THREADS = 16
# Requests that fetch a URL, of all accounts together (each account has its own bound too).
FETCH_THREADS = 8


class Lane:
    """A few threads for one kind of work; work waits for a free thread in arrival order.

    A plain thread pool, not anyio's `to_thread`: on PostgreSQL every request makes this hop,
    and anyio's bookkeeping around it (its run variables, cancel scopes, capacity limiter and a
    condition-based queue) was about a quarter of the event loop's time under bench/load.py
    --postgres (a sampling profile of the interpreter lock's holders)."""

    def __init__(self, name: str, threads: int) -> None:
        self.name = name
        self.threads = threads
        self.pool = self._new_pool()

    def _new_pool(self) -> ThreadPoolExecutor:
        # Threads are started as work arrives, up to `threads`.
        return ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix=f"obk-{self.name}")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on one of the lane's threads, in the caller's context."""
        context = contextvars.copy_context()

        def call() -> T:
            return context.run(fn, *args, **kwargs)

        work = self.pool.submit(call)
        try:
            return await asyncio.wrap_future(work)
        except asyncio.CancelledError:
            # Work not yet started is dropped. Started work cannot be stopped: the caller waits
            # for it, shielded from the cancel scope that keeps cancelling it, so a cancelled
            # stream does not close its generator while a thread still runs it, and a cancelled
            # request does not give its place up while its thread still works.
            if not work.done():
                with CancelScope(shield=True):
                    await asyncio.wait([asyncio.wrap_future(work)])
            raise

    async def iterate(self, items: Iterator[T]) -> AsyncIterator[T]:
        """Each next item of `items` taken on one of the lane's threads."""
        done = object()
        while (item := await self.run(next, items, done)) is not done:
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Let the threads go; a later run (the app started again) starts new ones."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool = self._new_pool()


class AccountSlots:
    """At most `per_account` requests of one account at a time; the others wait, in arrival
    order. Used on the event loop only, so it needs no lock; an account's limiter lives while
    any of its requests holds or waits for it."""

    def __init__(self, per_account: int) -> None:
        self.per_account = per_account
        self._held: dict[str, tuple[CapacityLimiter, int]] = {}

    @asynccontextmanager
    async def slot(self, account: str) -> AsyncIterator[None]:
        limiter, users = self._held.get(account) or (CapacityLimiter(self.per_account), 0)
        self._held[account] = (limiter, users + 1)
        try:
            async with limiter:
                yield
        finally:
            limiter, users = self._held[account]
            if users == 1:
                del self._held[account]
            else:
                self._held[account] = (limiter, users - 1)


class Lanes:
    """Admission and the read, write, long and fetch lanes of one server process."""

    def __init__(self, threads: int, fetches_per_account: int = 2) -> None:
        self.admitted = threads  # as many as a lane has threads (see above)
        self.admit = CapacityLimiter(self.admitted)
        self.read = Lane("read", threads)
        self.write = Lane("write", threads)
        self.long = Lane("long", LONG_THREADS)
        self.fetch = Lane("fetch", FETCH_THREADS)
        self.fetch_slots = AccountSlots(fetches_per_account)
        self._stalled = 0  # writers now waiting past their patience for SQLite's write turn
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def for_store(cls, is_sqlite: bool, threads: int | None, fetches_per_account: int = 2) -> Lanes:
        return cls(
            threads or (SQLITE_THREADS if is_sqlite else POSTGRES_THREADS), fetches_per_account
        )

    def for_effect(self, effect: Effect) -> Lane:
        return self.read if effect is Effect.READ else self.write

    async def run(self, lane: Lane, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on a thread of `lane`, once the lane has room."""
        self._loop = asyncio.get_running_loop()

        def work() -> T:
            with watching_writer_waits(self._tell):
                return fn(*args, **kwargs)

        return await lane.run(work)

    def _tell(self, stalled: bool) -> None:
        """On a lane's thread: a writer stalled, or got its turn after stalling."""
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop has closed: the server has stopped
            self._loop.call_soon_threadsafe(self._writer_stalled, stalled)

    def _writer_stalled(self, stalled: bool) -> None:
        """While any writer is stalled (another transaction, perhaps of another process, holds
        SQLite's write lock for long: a big file's records, a writer stopped), admission is as
        wide as Starlette's own thread pool, so the reads queued behind the stalled writers and
        those that arrive meanwhile are served; it narrows again once no writer is stalled."""
        self._stalled += 1 if stalled else -1
        self.admit.total_tokens = STALLED_ADMISSION if self._stalled else self.admitted

    def close(self) -> None:
        """Let the lanes' threads go when the app stops (work not yet started is dropped)."""
        for lane in (self.read, self.write, self.long, self.fetch):
            lane.close()
