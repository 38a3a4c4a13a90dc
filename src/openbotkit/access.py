"""Who may do what: effect classes (read < write < destructive) and the limits of an API key.

A floor module (no dependencies): the registry declares each action's effect with it, the
runtime remembers authenticated keys, and the services check a key's limits
(services/keys.py says what they mean).
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass


def token_hash(token: str) -> str:
    """What is stored of a secret or session token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


class Effect(enum.StrEnum):
    """What running an action does; drives confirmation, key scopes and MCP hints."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def includes(self, other: Effect) -> bool:
        """A scope includes the effects below it: write admits read, destructive admits all."""
        return self.rank >= other.rank


_RANK = {Effect.READ: 0, Effect.WRITE: 1, Effect.DESTRUCTIVE: 2}


@dataclass(frozen=True)
class Key:
    """The limits of one live API secret, as the server authenticated it."""

    id: str
    account_id: str
    scope: Effect = Effect.DESTRUCTIVE
    # Both None: every resource of the account. Otherwise both sets (either may be empty).
    bots: frozenset[str] | None = None
    datasets: frozenset[str] | None = None
    budget_tokens: int | None = None
    expires_at: int | None = None
    # A conversation session token: it reaches this conversation alone (services/keys.py).
    conversation: str | None = None

    @property
    def limited(self) -> bool:
        return self.bots is not None or self.datasets is not None or self.conversation is not None

    @property
    def public(self) -> bool:
        """A limited key that may not reconfigure what it is limited to (scope below
        destructive): the kind a web page holds. It starts conversations and their sessions, it
        does not choose the model, backstory, dataset or limits, and never sees a backstory."""
        return self.limited and self.scope is not Effect.DESTRUCTIVE

    @property
    def unrestricted(self) -> bool:
        """Every effect on every resource: nothing to check before an action."""
        return self.scope is Effect.DESTRUCTIVE and not self.limited

    def describe(self) -> str:
        """`scope write, bots b1, datasets none` (error messages and `obk key list`)."""
        parts = [f"scope {self.scope.value}"]
        if self.conversation is not None:
            parts.append(f"a session of conversation {self.conversation} only")
        elif self.limited:
            parts.append("bots " + (", ".join(sorted(self.bots or ())) or "none"))
            parts.append("datasets " + (", ".join(sorted(self.datasets or ())) or "none"))
        return ", ".join(parts)
