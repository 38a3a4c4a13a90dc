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


# Bounds a model string's numbers must respect: a request may not ask for unbounded work (a
# million tokens, a million history messages loaded per turn).
_BOUNDS: dict[str, tuple[float, float]] = {
    "maxTokens": (1, 65_536),
    "interactionMaxMessages": (1, 1_000),
    "temperature": (0, 2),
    "topP": (0, 1),
    "frequencyPenalty": (-2, 2),
    "presencePenalty": (-2, 2),
    "seed": (-(2**31), 2**31 - 1),
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
        bounds = _BOUNDS.get(key)
        if bounds is not None and not bounds[0] <= options[key] <= bounds[1]:
            low, high = (int(b) if cast is int else b for b in bounds)
            raise InvalidInput(
                f"model option {key} must be between {low} and {high}, got {raw}",
                details=[Problem("/model", "model_string", f"{key} in [{low}, {high}]")],
            )
    return ModelSpec(name, options)
