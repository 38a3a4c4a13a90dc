"""The parser seam: `Section`s of text with where they came from (page, heading)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from openbotkit.errors import InvalidInput

Parser = Callable[[bytes], list["Section"]]


@dataclass
class Section:
    """A run of text and its position: `meta` may hold `page` and `heading`."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)


class SectionBuilder:
    """Collects lines under the current heading. Each heading starts a section whose text
    repeats it, because a chunk cut from the section still needs to say what it is about."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.heading = ""
        self.lines: list[str] = []

    def start(self, heading: str) -> None:
        self.flush()
        self.heading = heading

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        body = "\n".join(self.lines).strip()
        if body:
            text = f"{self.heading}\n{body}" if self.heading else body
            self.sections.append(Section(text, {"heading": self.heading} if self.heading else {}))
        self.lines.clear()

    def done(self) -> list[Section]:
        self.flush()
        return self.sections


@dataclass(frozen=True)
class ParserEntry:
    name: str
    content_types: tuple[str, ...]
    extensions: tuple[str, ...]
    parse: Parser


PARSERS: list[ParserEntry] = []


def register(
    name: str, content_types: tuple[str, ...], extensions: tuple[str, ...]
) -> Callable[[Parser], Parser]:
    def add(fn: Parser) -> Parser:
        PARSERS.append(ParserEntry(name, content_types, extensions, fn))
        return fn

    return add


def _find(content_type: str | None, name: str | None) -> ParserEntry | None:
    ctype = (content_type or "").split(";")[0].strip().lower()
    for entry in PARSERS:
        if ctype and ctype in entry.content_types:
            return entry
    suffix = PurePath(name or "").suffix.lower()
    for entry in PARSERS:
        if suffix and suffix in entry.extensions:
            return entry
    if ctype.startswith("text/"):
        return next(e for e in PARSERS if e.name == "text")
    return None


def parse(data: bytes, content_type: str | None, name: str | None) -> list[Section]:
    """Sections of a file; a clear error when the type is unsupported or the file is corrupt."""
    entry = _find(content_type, name)
    if entry is None:
        known = ", ".join(sorted({e for p in PARSERS for e in p.extensions}))
        raise InvalidInput(
            f"cannot read {name or 'file'} ({content_type or 'unknown type'}); supported: {known}"
        )
    try:
        sections = entry.parse(data)
    except InvalidInput:
        raise
    except Exception as exc:  # a corrupt file is the user's problem to see, not a crash
        raise InvalidInput(f"cannot parse {name or 'file'} as {entry.name}: {exc}") from exc
    return [s for s in sections if s.text.strip()]


def decode_text(data: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = data.decode(encoding)
            if "\x00" not in text:
                return text
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")
