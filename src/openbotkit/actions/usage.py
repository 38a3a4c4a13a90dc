"""Account usage (spec §8.1)."""

from __future__ import annotations

from pydantic import Field

from openbotkit.actions.base import Input, Output
from openbotkit.actions.registry import Effect, action
from openbotkit.services import usage
from openbotkit.services.context import Ctx


class FetchUsageInput(Input):
    pass


class DatabaseUsage(Output):
    datasets: int
    records: int
    skillsets: int = 0
    abilities: int = 0
    files: int
    users: int = 0


class UsageOutput(Output):
    tokens: int
    conversations: int
    messages: int
    database: DatabaseUsage


@action("fetch_usage", Effect.READ, "GET /usage/fetch", offload=True)
def fetch_usage(ctx: Ctx, inp: FetchUsageInput) -> UsageOutput:
    """Tokens, conversations and messages this month, and what the account stores now."""
    return UsageOutput(**usage.totals(ctx), database=DatabaseUsage(**usage.database_counts(ctx)))


class FetchUsageSeriesInput(Input):
    days: int = Field(
        90, ge=1, le=366, description="How many days back, today included (UTC days)."
    )


class UsagePoint(Output):
    date: int = Field(description="Start of the UTC day, ms since the epoch.")
    total: int


class UsageSeriesOutput(Output):
    tokens: list[UsagePoint]
    conversations: list[UsagePoint]
    messages: list[UsagePoint]


@action("fetch_usage_series", Effect.READ, "GET /usage/series/fetch")
def fetch_usage_series(ctx: Ctx, inp: FetchUsageSeriesInput) -> UsageSeriesOutput:
    """Tokens, conversations and messages per day, oldest first (the console's usage chart)."""
    return UsageSeriesOutput.model_validate(usage.series(ctx, inp.days))
