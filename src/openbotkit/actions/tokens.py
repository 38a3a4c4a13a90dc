"""API keys of the acting account, over the API (the console's Keys page).

`obk key` manages keys of any account from the machine itself; these actions let a signed-in
user manage their own account's keys. They are marked `credentials=True`. A key makes only keys
at most as wide as itself (services/tokens.py); listing and revoking take a key without limits.
"""

from __future__ import annotations

from pydantic import Field

from openbotkit.actions.base import Input, Output, Timestamp
from openbotkit.actions.registry import Effect, action
from openbotkit.services import tokens
from openbotkit.services.context import Ctx

MAX_BUDGET_TOKENS = 10**12
MAX_LIFETIME_S = 10 * 365 * 86_400


class CreateTokenInput(Input):
    name: str | None = Field(None, max_length=191, description="A label to recognise the key by.")
    scope: Effect = Field(
        Effect.DESTRUCTIVE,
        description="Highest effect class allowed (read < write < destructive); each includes"
        " those below it.",
    )
    bots: list[str] | None = Field(
        None,
        description="Limit the key to these bots (ids or @aliases) and their conversations;"
        " with `datasets`, to exactly the resources both list.",
    )
    datasets: list[str] | None = Field(
        None, description="Limit the key to these datasets (ids or @aliases), records and files."
    )
    # Upper bounds keep the stored values inside a 64-bit column (a fuzzer's 2**63 was a 500).
    budget_tokens: int | None = Field(
        None,
        ge=1,
        le=MAX_BUDGET_TOKENS,
        description="Tokens completions may spend through this key.",
    )
    expires_in: int | None = Field(
        None,
        ge=1,
        le=MAX_LIFETIME_S,
        description="Lifetime in seconds from now (at most 10 years).",
    )


class CreateTokenOutput(Output):
    id: str
    token: str = Field(description="The secret itself: shown only in this answer.")


class ListTokensInput(Input):
    pass


class TokenOutput(Output):
    id: str
    name: str | None = None
    prefix: str = Field(description="The first characters of the secret, to tell keys apart.")
    scope: Effect
    bots: list[str] | None = Field(None, description="Bot ids the key is limited to.")
    datasets: list[str] | None = Field(None, description="Dataset ids the key is limited to.")
    budget_tokens: int | None = None
    tokens_used: int = Field(description="Tokens completions have spent through this key.")
    expires_at: Timestamp | None = None
    created_at: Timestamp
    revoked_at: Timestamp | None = None


class ListTokensOutput(Output):
    items: list[TokenOutput]
    cursor: str = ""


class TokenRef(Input):
    token_id: str = Field(description="Key id (from list_tokens).")


class RevokeTokenOutput(Output):
    id: str
    revoked_at: Timestamp


@action("create_token", Effect.WRITE, "POST /token/create", credentials=True)
def create_token(ctx: Ctx, inp: CreateTokenInput) -> CreateTokenOutput:
    """Create an API key for this account, no wider than the calling key; its secret shows once."""
    row, token = tokens.create(
        ctx,
        inp.name,
        scope=inp.scope,
        bots=inp.bots,
        datasets=inp.datasets,
        budget_tokens=inp.budget_tokens,
        expires_in_s=inp.expires_in,
    )
    return CreateTokenOutput(id=row.id, token=token)


@action("list_tokens", Effect.READ, "GET /token/list", credentials=True)
def list_tokens(ctx: Ctx, inp: ListTokensInput) -> ListTokensOutput:
    """List this account's API keys, newest first (never their secrets)."""
    items = [
        TokenOutput.model_validate(
            {
                "id": r.id,
                "name": r.name,
                "prefix": r.prefix,
                "scope": r.scope,
                "bots": r.bots,
                "datasets": r.datasets,
                "budget_tokens": r.budget_tokens,
                "tokens_used": used,
                "expires_at": r.expires_at,
                "created_at": r.created_at,
                "revoked_at": r.revoked_at,
            }
        )
        for r, used in tokens.list_all(ctx)
    ]
    return ListTokensOutput(items=items)


@action("revoke_token", Effect.DESTRUCTIVE, "POST /token/{tokenId}/revoke", credentials=True)
def revoke_token(ctx: Ctx, inp: TokenRef) -> RevokeTokenOutput:
    """Revoke an API key of this account: requests with it are refused from now on."""
    row = tokens.revoke(ctx, inp.token_id)
    assert row.revoked_at is not None
    return RevokeTokenOutput(id=row.id, revoked_at=row.revoked_at)
