"""Readable terminal renderings of action outputs (the --json envelope is the machine form)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from rich.console import Console
from rich.table import Table

_TIME_KEYS = {"createdAt", "updatedAt", "expiresAt"}
_TABLE_COLUMNS = ("id", "name", "type", "text", "score", "alias", "createdAt")


def _cell(key: str, value: Any, width: int = 60) -> str:
    if key in _TIME_KEYS and isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def render(data: Any, console: Console | None = None) -> None:
    """Print a list as a table, an object as aligned key: value lines."""
    console = console or Console(highlight=False, soft_wrap=True)
    listed = next(
        (
            k
            for k in ("items", "records")
            if isinstance(data, dict) and isinstance(data.get(k), list)
        ),
        None,
    )
    if listed is not None:
        items: list[dict[str, Any]] = data[listed]
        if not items:
            console.print("(no items)")
            return
        columns = [c for c in _TABLE_COLUMNS if any(c in item for item in items)]
        table = Table(*columns)
        for item in items:
            table.add_row(*(_cell(c, item[c]) if c in item else "" for c in columns))
        console.print(table)
        if data.get("cursor"):
            console.print(f'next page: --data \'{{"cursor": "{data["cursor"]}"}}\'')
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            console.print(f"{key.ljust(width)}  {_cell(key, value, 200)}", markup=False)
        return
    console.print(json.dumps(data, indent=2, ensure_ascii=False), markup=False)
