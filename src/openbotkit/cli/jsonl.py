"""JSON Lines files the CLI reads (records to import, questions to ask): each value with its
line number, so every error can name the line it comes from."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openbotkit.errors import InvalidInput, Problem


def json_lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line; a line that is not JSON is InvalidInput
    naming the file and the line (the lines before it have been yielded)."""
    with path.open(encoding="utf-8") as lines:
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(
                    f"{path}:{n}: not JSON: {exc.msg}",
                    details=[Problem(str(path), "json", f"line {n}: {exc.msg}")],
                ) from None
