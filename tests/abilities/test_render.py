"""Rendering an action block's parameters and secrets (services/ability_kinds.render), value by
value on the parsed block."""

from __future__ import annotations

from typing import Any

from openbotkit.abilities.instruction import parse
from openbotkit.services.ability_kinds import render

BLOCK = """```fetch
method: POST
url: https://api.example.com/orders/$[orderId! euc|the order]?ref=$[ref?]
query:
  status: $[status? enum<open,closed>]
headers:
  Authorization: ${SECRET_DEFAULT}
  X-Note: note $[note?|free text]
body:
  items: $[items! j|a JSON list]
  summary: items $[items! j] for $[name ys|who]
```"""


def rendered(arguments: dict[str, Any], secrets: dict[str, str] | None = None) -> Any:
    parsed = parse(BLOCK)
    assert parsed.action is not None
    params = {p.name: p for p in parsed.parameters}
    return render(parsed.action.body, params, arguments, secrets or {"DEFAULT": "Bearer s3cr3t"})


def test_flags_shape_each_value() -> None:
    out = rendered({"orderId": "A 1/2?x", "items": [1, {"a": "b"}], "name": "Ann: x", "ref": "r"})
    assert out["url"] == "https://api.example.com/orders/A%201%2F2%3Fx?ref=r"
    assert out["body"]["items"] == [1, {"a": "b"}]  # a field that is only a `j` parameter
    assert out["body"]["summary"] == 'items [1, {"a": "b"}] for Ann: x'
    assert out["headers"]["Authorization"] == "Bearer s3cr3t"


def test_an_optional_parameter_left_out_drops_its_key_or_is_empty_in_text() -> None:
    out = rendered({"orderId": "1", "items": []})
    assert out["query"] == {}
    assert out["headers"]["X-Note"] == "note "
    assert out["url"].endswith("/orders/1?ref=")


def test_a_value_cannot_name_a_secret_or_add_keys() -> None:
    out = rendered(
        {"orderId": "1", "items": [], "note": "${SECRET_DEFAULT}", "name": "x\nevil: key"}
    )
    assert out["headers"]["X-Note"] == "note ${SECRET_DEFAULT}"
    assert set(out["body"]) == {"items", "summary"}
    assert out["body"]["summary"].endswith("for x\nevil: key")
    # Nor does a secret's value that spells a parameter become one.
    out = rendered({"orderId": "1", "items": [], "note": "n"}, {"DEFAULT": "k$[note]"})
    assert out["headers"]["Authorization"] == "k$[note]"
