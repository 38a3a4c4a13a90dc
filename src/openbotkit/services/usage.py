"""Usage accounting: an append-only ledger summed per billing period (the calendar month, UTC)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import func, select

from openbotkit.errors import InsufficientCredit
from openbotkit.ids import now_ms
from openbotkit.services.context import Ctx
from openbotkit.store.tables import Ability, Dataset, File, Record, Skillset, UsageEvent

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


def remaining_budget(ctx: Ctx) -> int | None:
    """Tokens the acting key may still spend (None: no budget), or InsufficientCredit.

    Called before a model runs, so a spent budget generates nothing. Completions already
    under way when the budget runs out finish (they were checked when they started).
    """
    key = ctx.key
    if key is None or key.budget_tokens is None:
        return None
    used = int(
        ctx.session.scalar(
            select(func.coalesce(func.sum(UsageEvent.amount), 0)).where(
                UsageEvent.secret_id == key.id, UsageEvent.metric == "tokens"
            )
        )
        or 0
    )
    if used >= key.budget_tokens:
        raise InsufficientCredit(
            f"this key's token budget is spent ({used} of {key.budget_tokens} tokens used);"
            " nothing was generated"
        )
    return key.budget_tokens - used


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
