"""Usage accounting: a ledger summed per billing period (the calendar month, UTC), and the token
budgets of API keys.

A key's budget holds under concurrency: a completion reserves its prompt and its longest answer
before the model runs (`reserve`, one locked transaction per key), and its reservation row
becomes the charge of what it used when the stream ends, however it ends (`Hold`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import delete, func, select, update

from openbotkit.errors import InsufficientCredit, Problem, ScopeMissing
from openbotkit.ids import now_ms
from openbotkit.services.context import AccountScope, Ctx
from openbotkit.store.tables import Ability, Dataset, File, Record, Secret, Skillset, UsageEvent

Metric = Literal["tokens", "conversations", "messages"]


def record(ctx: Ctx, metric: Metric, amount: int = 1) -> None:
    """Add `amount` to an account's usage (and the key's it came through); an insert, so
    concurrent requests never lose counts."""
    if amount:
        ctx.session.add(
            UsageEvent(
                account_id=ctx.account_id,
                secret_id=ctx.key.id if ctx.key else None,
                metric=metric,
                amount=amount,
                created_at=now_ms(),
            )
        )


# What counts against a key's budget in the ledger: tokens charged, tokens set aside for
# completions under way (`reserved`), and budget handed to keys it made (`granted`).
BUDGET_METRICS = ("tokens", "reserved", "granted")


def spent(ctx: Ctx, key_id: str) -> int:
    """Tokens of a key's budget that are gone: charged, reserved or granted."""
    return int(
        ctx.session.scalar(
            select(func.coalesce(func.sum(UsageEvent.amount), 0)).where(
                UsageEvent.secret_id == key_id, UsageEvent.metric.in_(BUDGET_METRICS)
            )
        )
        or 0
    )


def lock_budget(ctx: Ctx, key_id: str) -> None:
    """Serialise changes to one key's budget until `ctx`'s write transaction ends.

    PostgreSQL: a row lock on the key (READ COMMITTED, so the sum read after it sees what the
    previous holder committed). SQLite: a write transaction already holds the database's one
    write lock (BEGIN IMMEDIATE), so the read and the insert after it are atomic as they are.
    """
    ctx.session.execute(select(Secret.id).where(Secret.id == key_id).with_for_update())


def remaining_budget(ctx: Ctx, at_least: int = 1) -> int | None:
    """Tokens the acting key may still spend (None: no budget), or InsufficientCredit when
    fewer than `at_least` are left.

    A cheap early check (no lock) before a completion searches, fetches or builds its prompt;
    what holds is the reservation `reserve` makes before the model runs.
    """
    key = ctx.key
    if key is None or key.budget_tokens is None:
        return None
    used = spent(ctx, key.id)
    if key.budget_tokens - used < at_least:
        raise InsufficientCredit(
            f"this key's token budget is spent ({used} of {key.budget_tokens} tokens used or"
            " reserved); nothing was generated"
        )
    return key.budget_tokens - used


@dataclass
class Hold:
    """One completion's claim on the acting key's budget, from before its model runs until
    its usage is charged. `output_limit` caps the answer (None: the key has no budget)."""

    scope: AccountScope
    event_id: int | None = None
    reserved: int = 0
    output_limit: int | None = None
    settled: bool = False

    @contextmanager
    def charging(self, tokens: int) -> Iterator[Ctx]:
        """A write transaction that also charges `tokens` (with what the caller stores, so
        both commit or neither); the hold is settled once it has committed."""
        with self.scope.transaction() as ctx:
            yield ctx
            self._charge(ctx, tokens)
        self.settled = True

    def settle(self, tokens: int) -> None:
        """Charge `tokens` in a transaction of its own unless already charged: the end of a
        stream that stopped early (its client went away, the model or the store failed)."""
        if not self.settled:
            with self.charging(tokens):
                pass

    def _charge(self, ctx: Ctx, tokens: int) -> None:
        if self.event_id is None:
            record(ctx, "tokens", tokens)
            return
        mine = UsageEvent.id == self.event_id
        if not tokens:
            ctx.session.execute(delete(UsageEvent).where(mine))
            return
        # The reservation's own row becomes the charge: the rest of the reservation is
        # released in the same write, and a completion is one row of the ledger.
        ctx.session.execute(
            update(UsageEvent)
            .where(mine)
            .values(metric="tokens", amount=tokens, created_at=now_ms())
        )


def reserve(scope: AccountScope, count_prompt: Callable[[], int], max_output: int) -> Hold:
    """Set aside the prompt (`count_prompt()` tokens) and the longest answer allowed from the
    acting key's budget, or InsufficientCredit when not even the prompt and one token of answer
    fit. A key without a budget reserves nothing.

    Atomic on both databases (`lock_budget`): concurrent completions on one key never reserve
    more than its budget between them. The answer is capped at what is left after the prompt,
    so a completion charged what it used never takes the key past its budget when its prompt
    was counted exactly (the local models; a remote model's prompt is estimated first and
    charged as the provider reports it).
    """
    key = scope.key
    if key is None or key.budget_tokens is None:
        return Hold(scope)
    prompt_tokens = count_prompt()  # only here: counting tokenizes the whole prompt
    with scope.transaction() as ctx:
        lock_budget(ctx, key.id)
        left = key.budget_tokens - spent(ctx, key.id)
        if left <= prompt_tokens:
            raise InsufficientCredit(
                f"this key's token budget is spent for this completion: {max(left, 0)} of"
                f" {key.budget_tokens} tokens are left and the prompt alone needs"
                f" {prompt_tokens}; nothing was generated"
            )
        output = min(max_output, left - prompt_tokens)
        event = UsageEvent(
            account_id=ctx.account_id,
            secret_id=key.id,
            metric="reserved",
            amount=prompt_tokens + output,
            created_at=now_ms(),
        )
        ctx.session.add(event)
        ctx.session.flush()
        return Hold(scope, event.id, prompt_tokens + output, output)


def grant(ctx: Ctx, budget_tokens: int) -> None:
    """Move `budget_tokens` from the acting key's budget to a key it is making (in `ctx`'s
    transaction), or ScopeMissing naming /budgetTokens when it has less left.

    Moved, not copied: a key with 100 tokens left could otherwise make ten keys of 100.
    """
    key = ctx.key
    if key is None or key.budget_tokens is None:
        return
    lock_budget(ctx, key.id)
    left = key.budget_tokens - spent(ctx, key.id)
    if budget_tokens > left:
        raise ScopeMissing(
            f"create_token would make a key wider than this one: budgetTokens {budget_tokens}"
            f" is more than this key has left ({max(left, 0)} of {key.budget_tokens}); a key"
            " it makes gets part of its budget, at most what is left",
            details=[Problem("/budgetTokens", "maximum", f"must be <= {max(left, 0)}")],
        )
    ctx.session.add(
        UsageEvent(
            account_id=ctx.account_id,
            secret_id=key.id,
            metric="granted",
            amount=budget_tokens,
            created_at=now_ms(),
        )
    )


def period_start_ms(now: int | None = None) -> int:
    moment = dt.datetime.fromtimestamp((now or now_ms()) / 1000, tz=dt.UTC)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


def totals(ctx: Ctx) -> dict[str, int]:
    """This period's tokens, conversations and messages."""
    rows = ctx.session.execute(
        select(UsageEvent.metric, func.sum(UsageEvent.amount))
        .where(UsageEvent.account_id == ctx.account_id, UsageEvent.created_at >= period_start_ms())
        .group_by(UsageEvent.metric)
    )
    sums = {metric: int(total or 0) for metric, total in rows}
    return {m: sums.get(m, 0) for m in ("tokens", "conversations", "messages")}


def database_counts(ctx: Ctx) -> dict[str, int]:
    """How many datasets, records, skillsets, abilities and files the account holds now."""

    def count(table: type[Dataset | Record | File | Skillset | Ability]) -> int:
        query = select(func.count()).select_from(table).where(table.account_id == ctx.account_id)
        return int(ctx.session.scalar(query) or 0)

    return {
        "datasets": count(Dataset),
        "records": count(Record),
        "skillsets": count(Skillset),
        "abilities": count(Ability),
        "files": count(File),
    }


DAY_MS = 86_400_000


def series(ctx: Ctx, days: int) -> dict[str, list[dict[str, int]]]:
    """Daily totals of each metric over the last `days` days (UTC), oldest first, every day
    present (zero when nothing was used), so a chart needs no gap filling."""
    today = now_ms() // DAY_MS * DAY_MS
    start = today - (days - 1) * DAY_MS
    day = (UsageEvent.created_at - (UsageEvent.created_at % DAY_MS)).label("day")
    rows = ctx.session.execute(
        select(UsageEvent.metric, day, func.sum(UsageEvent.amount))
        .where(UsageEvent.account_id == ctx.account_id, UsageEvent.created_at >= start)
        .group_by(UsageEvent.metric, day)
    )
    sums = {(metric, int(d)): int(total or 0) for metric, d, total in rows}
    dates = [start + i * DAY_MS for i in range(days)]
    return {
        m: [{"date": d, "total": sums.get((m, d), 0)} for d in dates]
        for m in ("tokens", "conversations", "messages")
    }
