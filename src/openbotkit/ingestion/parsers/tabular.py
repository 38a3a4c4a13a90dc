"""CSV (each row as `column: value` pairs) and JSON (each leaf as `path: value`)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from openbotkit.ingestion.parsers.base import Section, decode_text, register


@register("csv", ("text/csv", "application/csv"), (".csv",))
def parse_csv(data: bytes) -> list[Section]:
    """Rows keep their column names, so a chunk of rows still says what each value is."""
    text = decode_text(data)
    dialect = csv.Sniffer().sniff(text[:4096]) if text.strip() else csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    lines = [
        "; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False) if v.strip())
        for row in body
    ]
    return [Section("\n\n".join(line for line in lines if line), {"columns": header})]


def _leaves(value: Any, path: str) -> list[str]:
    if isinstance(value, dict):
        return [
            line for k, v in value.items() for line in _leaves(v, f"{path}.{k}" if path else str(k))
        ]
    if isinstance(value, list):
        return [line for i, v in enumerate(value) for line in _leaves(v, f"{path}[{i}]")]
    return [f"{path}: {value}"]


@register("json", ("application/json",), (".json",))
def parse_json(data: bytes) -> list[Section]:
    value = json.loads(decode_text(data))
    if isinstance(value, list):  # a list of objects: one paragraph per object
        return [Section("\n".join(_leaves(item, "")), {"item": i}) for i, item in enumerate(value)]
    return [Section("\n".join(_leaves(value, "")))]
