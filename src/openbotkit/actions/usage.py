"""Account usage (spec §8.1)."""

from __future__ import annotations

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
