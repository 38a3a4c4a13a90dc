"""Polled channels: one poller per integration across all workers, held by a lease.

A channel that does not push its updates (Telegram without a public address) is asked for
them in a loop. Two workers asking at once would each get the same updates (Telegram refuses
the second getUpdates outright), so every worker runs `Pollers` next to its job loop: it looks
for integrations to poll, takes the lease of each free one (a row in integration_pollers), and
polls that one in a thread of its own while it holds the lease. The lease is renewed on every
poll and runs out when its worker dies; another worker then takes it over, starting from the
stored cursor.

The cursor moves only in a transaction that names the holder (`advance`), the same one that
stores the updates before it: a worker that lost its lease (paused past it, then woke) stores
nothing, and the updates it fetched are fetched again by the new holder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openbotkit.ids import now_ms
from openbotkit.runtime import Runtime
from openbotkit.store.tables import IntegrationPoller

log = logging.getLogger("openbotkit.channels")
# How often a worker looks for integrations that nobody polls (new ones, a dead worker's).
SCAN_S = 2.0
# After a poller stops on an error (a refused token, a webhook in the way), how long before
# this worker tries that integration again: the error is on the integration meanwhile.
RETRY_AFTER_S = 60.0


def acquire(session: Session, integration_id: str, holder: str, lease_ms: int) -> str | None:
    """Take (or renew) the integration's poll lease; its cursor ("" if it has none yet), or
    None when another worker holds a lease that has not run out."""
    now = now_ms()
    if session.get(IntegrationPoller, integration_id) is None:
        try:
            with session.begin_nested():
                session.add(
                    IntegrationPoller(
                        integration_id=integration_id,
                        holder=holder,
                        lease_until=now + lease_ms,
                        updated_at=now,
                    )
                )
            return ""
        except IntegrityError:  # another worker made it meanwhile: compete for it below
            pass
    free = or_(
        IntegrationPoller.holder.is_(None),
        IntegrationPoller.holder == holder,
        IntegrationPoller.lease_until < now,
    )
    taken = session.execute(
        update(IntegrationPoller)
        .where(IntegrationPoller.integration_id == integration_id, free)
        .values(holder=holder, lease_until=now + lease_ms, updated_at=now)
    )
    if not taken.rowcount:  # type: ignore[attr-defined]
        return None
    cursor = session.scalar(
        select(IntegrationPoller.cursor)
        .where(IntegrationPoller.integration_id == integration_id)
        .execution_options(populate_existing=True)
    )
    return cursor or ""


def advance(
    session: Session, integration_id: str, holder: str, cursor: str | None, lease_ms: int
) -> bool:
    """Move the cursor (None: keep it) and renew the lease, if `holder` still holds it; False
    (nothing written) if another worker took it over. Call it in the transaction that stores
    what was read before the new cursor."""
    now = now_ms()
    values: dict[str, object] = {"lease_until": now + lease_ms, "updated_at": now}
    if cursor is not None:
        values["cursor"] = cursor
    result = session.execute(
        update(IntegrationPoller)
        .where(
            IntegrationPoller.integration_id == integration_id,
            IntegrationPoller.holder == holder,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(session: Session, integration_id: str, holder: str) -> None:
    """Give the lease up at once (a worker stopping), so another worker need not wait for it
    to run out."""
    session.execute(
        update(IntegrationPoller)
        .where(
            IntegrationPoller.integration_id == integration_id,
            IntegrationPoller.holder == holder,
        )
        .values(holder=None, lease_until=None, updated_at=now_ms())
    )


@dataclass(frozen=True)
class Channel:
    """A polled kind: which of its integrations want polling, and how one is polled.

    `poll(runtime, integration_id, holder, cursor, lease_ms, stop)` runs until `stop` is set or
    the lease is lost (False from `advance`); it returns False when it stopped on an error
    that is worth waiting for before polling that integration again.
    """

    kind: str
    wanted: Callable[[Runtime], list[str]]
    poll: Callable[[Runtime, str, str, str, int, threading.Event], bool]


class Pollers:
    """A worker's pollers: one thread per integration whose lease this worker holds."""

    def __init__(
        self, runtime: Runtime, holder: str, lease_ms: int, channels: Sequence[Channel]
    ) -> None:
        self.runtime = runtime
        self.channels = list(channels)
        self.holder = holder
        self.lease_ms = lease_ms
        self._running: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._resting: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        """Look for integrations to poll every SCAN_S until `stop`; then stop the pollers and
        give their leases up."""
        channels = self.channels
        try:
            while not stop.is_set():
                try:
                    self.scan(channels)
                except Exception:  # the database may be briefly unavailable; look again soon
                    log.exception("channel pollers: scan failed")
                stop.wait(SCAN_S)
        finally:
            self.close()

    def scan(self, channels: list[Channel]) -> None:
        """Start a poller for each wanted integration whose lease is free."""
        now = now_ms() / 1000
        for done in [i for i, (t, _) in self._running.items() if not t.is_alive()]:
            del self._running[done]
        for channel in channels:
            for integration_id in channel.wanted(self.runtime):
                if integration_id in self._running or self._resting.get(integration_id, 0) > now:
                    continue
                with self.runtime.store.session() as session:
                    cursor = acquire(session, integration_id, self.holder, self.lease_ms)
                if cursor is None:
                    continue
                log.info("polling %s integration %s", channel.kind, integration_id)
                halt = threading.Event()
                thread = threading.Thread(
                    target=self._poll,
                    args=(channel, integration_id, cursor, halt),
                    name=f"obk-poll-{integration_id}",
                    daemon=True,
                )
                self._running[integration_id] = (thread, halt)
                thread.start()

    def _poll(
        self, channel: Channel, integration_id: str, cursor: str, halt: threading.Event
    ) -> None:
        healthy = False
        try:
            healthy = channel.poll(
                self.runtime, integration_id, self.holder, cursor, self.lease_ms, halt
            )
        except Exception:
            log.exception("%s integration %s: poller failed", channel.kind, integration_id)
        if not healthy:
            self._resting[integration_id] = now_ms() / 1000 + RETRY_AFTER_S
        if not halt.is_set():
            self._release(integration_id)

    def _release(self, integration_id: str) -> None:
        try:
            with self.runtime.store.session() as session:
                release(session, integration_id, self.holder)
        except Exception:  # it runs out by itself
            log.warning("integration %s: could not release the poll lease", integration_id)

    def close(self) -> None:
        """Stop every poller and give its lease up. A poller in the middle of a long poll is
        not waited for: it stores nothing once its lease is gone (`advance`)."""
        for integration_id, (_, halt) in list(self._running.items()):
            halt.set()
            self._release(integration_id)
        self._running.clear()
