"""The one error hierarchy users see, mapped once at each edge (CLI envelope, HTTP body).

`code` is the connector's stable vocabulary (spec/actions.md); `wire_code` is what a
ChatBotKit-compatible server puts in `{"message", "code"}` bodies (spec/chatbotkit-api.md §1.9).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Problem:
    """One offending input field: a JSON pointer and the rule it broke."""

    pointer: str
    rule: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"pointer": self.pointer, "rule": self.rule, "message": self.message}


class ObkError(Exception):
    """An error the user sees; `code`, `status` and `wire_code` are the public contract."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    wire_code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, details: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)

    def to_json(self) -> dict[str, Any]:
        """The connector's error object (the CLI envelope's `error`)."""
        return {
            "code": self.code,
            "message": self.message,
            "status": self.status,
            "details": [d.to_json() for d in self.details],
        }


class InvalidInput(ObkError):
    code, status, wire_code = "invalid_input", 400, "BAD_REQUEST"


class UnknownAction(ObkError):
    code, status, wire_code = "unknown_action", 404, "NOT_FOUND"


class UnknownService(ObkError):
    code, status, wire_code = "unknown_service", 404, "NOT_FOUND"


class NotFound(ObkError):
    code, status, wire_code = "not_found", 404, "NOT_FOUND"


class NotAuthenticated(ObkError):
    code, status, wire_code = "not_authenticated", 401, "NOT_AUTHENTICATED"


class NotAuthorized(ObkError):
    code, status, wire_code = "not_authorized", 403, "NOT_AUTHORIZED"


class CredentialExpired(ObkError):
    """The secret was valid but its lifetime (`--expires-in`) has ended."""

    code, status, wire_code = "credential_expired", 401, "CREDENTIAL_EXPIRED"


class ScopeMissing(ObkError):
    """The secret is valid but limited: the message names the scope or resource needed."""

    code, status, wire_code = "scope_missing", 403, "SCOPE_MISSING"


class InsufficientCredit(ObkError):
    """The secret's token budget is spent; nothing was generated."""

    code, status, wire_code = "insufficient_credit", 402, "INSUFFICIENT_CREDIT"


class MethodNotAllowed(ObkError):
    code, status, wire_code = "method_not_allowed", 405, "METHOD_NOT_ALLOWED"


class Conflict(ObkError):
    code, status, wire_code = "conflict", 409, "CONFLICT"


class RateLimited(ObkError):
    code, status, wire_code = "rate_limited", 429, "TOO_MANY_REQUESTS"


class LimitsReached(ObkError):
    code, status, wire_code = "limits_reached", 429, "LIMITS_REACHED"


class ConfirmationRequired(ObkError):
    code, status, wire_code = "confirmation_required", 400, "BAD_REQUEST"


class ProviderError(ObkError):
    code, status, wire_code = "provider_error", 502, "BAD_GATEWAY"


class InternalError(ObkError):
    pass


# Order matters: a wire code shared by several classes maps back to the first listed.
ERROR_CLASSES: tuple[type[ObkError], ...] = (
    InvalidInput,
    NotFound,
    UnknownAction,
    UnknownService,
    NotAuthenticated,
    NotAuthorized,
    CredentialExpired,
    ScopeMissing,
    InsufficientCredit,
    MethodNotAllowed,
    Conflict,
    RateLimited,
    LimitsReached,
    ConfirmationRequired,
    ProviderError,
    InternalError,
)

_BY_CODE = {cls.code: cls for cls in ERROR_CLASSES}
_BY_WIRE: dict[str, type[ObkError]] = {}
for _cls in ERROR_CLASSES:
    _BY_WIRE.setdefault(_cls.wire_code, _cls)
_BY_STATUS: dict[int, type[ObkError]] = {}
for _cls in ERROR_CLASSES:
    _BY_STATUS.setdefault(_cls.status, _cls)


def error_class_for(*, code: str | None = None, status: int | None = None) -> type[ObkError]:
    """The class for a connector code, a wire code, or failing both an HTTP status."""
    if code:
        found = _BY_CODE.get(code) or _BY_WIRE.get(code.upper())
        if found:
            return found
    if status is not None:
        if status >= 500:
            return ProviderError
        return _BY_STATUS.get(status, InvalidInput if 400 <= status < 500 else InternalError)
    return InternalError
