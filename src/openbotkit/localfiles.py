"""This machine's files, read or written on a user's behalf: only where the user is local.

`path` fields (upload from a file, download into one; marked `LocalPath` in actions/base.py)
are honoured by the local CLI and the stdio MCP server, which act for whoever runs them; a server
reachable over the network never honours them, and the Python API only after an explicit opt-in
(`Engine(local_paths=True)`). The engine checks it (Engine._admit_local_fields).
A name that comes from elsewhere (a file's recorded name, a server's answer) is reduced to a
plain file name before it is joined to a directory, so `../../x` stays inside.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

from openbotkit.errors import InvalidInput, Problem

MAX_NAME_BYTES = 255


def safe_file_name(name: str | None, fallback: str) -> str:
    """`name` as one harmless path component: no directories, no control characters, no leading
    dots, at most 255 bytes; `fallback` (itself made safe) when nothing usable is left."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if unicodedata.category(c)[0] != "C")
    base = base.strip().lstrip(".").strip()
    encoded = base.encode("utf-8")[:MAX_NAME_BYTES]
    base = encoded.decode("utf-8", errors="ignore")
    if not base:
        return "download.bin" if name == fallback else safe_file_name(fallback, fallback)
    return base


def target_in(directory: Path, name: str | None, fallback: str) -> Path:
    """Where a download named `name` goes inside `directory` (checked to stay inside)."""
    target = directory / safe_file_name(name, fallback)
    if target.resolve().parent != directory.resolve():
        raise InvalidInput(
            f"refusing to write outside {directory}",
            details=[Problem("/path", "inside_directory", "file name leaves the directory")],
        )
    return target
