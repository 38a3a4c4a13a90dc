"""Generate docs/actions.md from the action registry (one source of truth for the reference).

Run: .venv/bin/python scripts/gen_docs.py        (rewrite docs/actions.md)
     .venv/bin/python scripts/gen_docs.py --check (exit 1 if it is out of date; tests run this)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from openbotkit.actions import REGISTRY
from openbotkit.cli.connector import effect_label

TARGET = Path(__file__).resolve().parent.parent / "docs" / "actions.md"


def _type_of(prop: dict[str, Any]) -> str:
    if "anyOf" in prop:
        kinds = [_type_of(p) for p in prop["anyOf"] if p.get("type") != "null"]
        return " or ".join(kinds) or "null"
    if "enum" in prop:
        return " or ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    kind = prop.get("type", "any")
    if kind == "array" and "items" in prop:
        return f"array of {_type_of(prop['items'])}"
    return str(kind)


def render() -> str:
    lines = [
        "# Actions",
        "",
        "Generated from the action registry by `scripts/gen_docs.py`; do not edit by hand.",
        "Every action runs the same through `obk connector run chatbotkit --action NAME`,",
        "`obk serve` (under `/api/v1` and `/v1`) and `Engine.execute(NAME, data)`.",
        "",
        "| action | effect | HTTP | purpose |",
        "|---|---|---|---|",
    ]
    for act in REGISTRY:
        lines.append(
            f"| [`{act.name}`](#{act.name}) | {effect_label(act)} | `{act.method} {act.path}` "
            f"| {act.description} |"
        )
    for act in REGISTRY:
        schema = act.input.model_json_schema(by_alias=True)
        required = set(schema.get("required", []))
        lines += ["", f"## {act.name}", "", act.description, ""]
        lines += [f"`{act.method} {act.path}` · effect: {effect_label(act)}", ""]
        props: dict[str, Any] = schema.get("properties", {})
        if not props:
            lines.append("Input: none.")
            continue
        lines += ["| input | type | required | description |", "|---|---|---|---|"]
        for name, prop in props.items():
            desc = (prop.get("description") or "").replace("\n", " ").replace("|", "\\|")
            req = "yes" if name in required else ""
            lines.append(f"| `{name}` | {_type_of(prop)} | {req} | {desc} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run scripts/gen_docs.py", file=sys.stderr)
            return 1
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
