"""ChatBotKit model strings: `name` or `name/key=value/key=value...` (spec §1.10)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openbotkit.errors import InvalidInput, Problem

_NUMERIC = {
    "maxTokens": int,
    "temperature": float,
    "frequencyPenalty": float,
    "presencePenalty": float,
    "seed": int,
    "interactionMaxMessages": int,
    "topP": float,
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def max_tokens(self) -> int | None:
        return self.options.get("maxTokens")

    @property
    def interaction_max_messages(self) -> int | None:
        return self.options.get("interactionMaxMessages")


def parse_model(value: str) -> ModelSpec:
    """Split a model string into its name and typed options; unknown keys are kept as text."""
    name, *pairs = value.split("/")
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(
                f"model option {pair!r} is not key=value",
                details=[Problem("/model", "model_string", "name/key=value/...")],
            )
        cast = _NUMERIC.get(key)
        try:
            options[key] = cast(raw) if cast else raw
        except ValueError:
            raise InvalidInput(
                f"model option {key} must be a number, got {raw!r}",
                details=[Problem("/model", "model_string", f"{key} is numeric")],
            ) from None
    return ModelSpec(name, options)
