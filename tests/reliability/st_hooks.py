"""Schemathesis hooks (loaded through SCHEMATHESIS_HOOKS): JSONL responses are checked too.

The published document describes an application/jsonl answer as the list of its lines, each a
JSON object; this deserializer reads it so, and a line that is not JSON fails the check.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.deserializer("application/jsonl")
def jsonl_lines(_ctx: Any, response: Any) -> list[Any]:
    text = response.content.decode(response.encoding or "utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]
