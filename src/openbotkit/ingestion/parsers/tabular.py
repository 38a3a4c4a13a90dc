"""CSV (each row as `column: value` pairs) and JSON (an outline: each key once, nested values
indented under it)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from openbotkit.ingestion.parsers.base import Sections, decode_text, register

# Nesting past this depth is written at this depth: indentation must not grow with depth
# (a deeply nested file would otherwise spend most of its text on spaces).
MAX_INDENT = 8


@register("csv", ("text/csv", "application/csv"), (".csv",))
def parse_csv(data: bytes, out: Sections) -> None:
    """Rows keep their column names, so a chunk of rows still says what each value is."""
    text = decode_text(data)
    dialect = csv.Sniffer().sniff(text[:4096]) if text.strip() else csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    header = next(rows, None)
    if header is None:
        return
    first = True
    for row in rows:
        line = "; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip())
        if not line:
            continue
        if not first:
            out.add("")  # a blank line between rows
        out.add(line)
        first = False
    out.end({"columns": header})


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _entries(value: Any) -> Iterator[tuple[str, Any]]:
    """(prefix, child) of a container: `key: ` for an object's entries, `- ` for a list's."""
    if isinstance(value, dict):
        return ((f"{k}: ", v) for k, v in value.items())
    return (("- ", v) for v in value)


def _outline(value: Any, out: Sections) -> None:
    """`key: value` lines, nested values indented under their key, list items as `- `, a list
    of plain values on one line. Every key is written once: repeating the whole path on each
    leaf (`a.b[3].c: 1`) made a 16 KB file 20 MB of text. Walked with a stack of its own, so
    nesting depth costs no recursion."""
    if _is_scalar(value):
        out.add(_scalar(value))
        return
    # Each frame: the entries left, the depth, and the `- ` that opens a list item's object.
    stack: list[tuple[Iterator[tuple[str, Any]], int, list[str]]] = [(_entries(value), 0, [])]
    while stack:
        entries, depth, lead = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        prefix, child = entry
        if not _is_scalar(child) and not child:
            continue  # an empty object or list says nothing
        pad = lead.pop() if lead else "  " * min(depth, MAX_INDENT)
        if _is_scalar(child):
            out.add(f"{pad}{prefix}{_scalar(child)}")
        elif isinstance(child, list) and all(_is_scalar(v) for v in child):
            out.add(f"{pad}{prefix}{', '.join(_scalar(v) for v in child)}")
        elif prefix == "- " and isinstance(child, dict):
            # A list item's object starts on the item's line: `- name: a`, then `  price: 1`.
            stack.append((_entries(child), depth + 1, [pad + prefix]))
        else:
            out.add(f"{pad}{prefix.rstrip()}")
            stack.append((_entries(child), depth + 1, []))


@register("json", ("application/json",), (".json",))
def parse_json(data: bytes, out: Sections) -> None:
    value = json.loads(decode_text(data))
    if isinstance(value, list):  # a list of objects: one paragraph per object
        for i, item in enumerate(value):
            _outline(item, out)
            out.end({"item": i})
        return
    _outline(value, out)
    out.end()
