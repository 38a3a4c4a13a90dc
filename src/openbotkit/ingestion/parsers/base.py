"""The parser seam: `Section`s of text with where they came from (page, heading), and the
bounds on what one file may become.

A parser writes its text into `Sections` as it goes, and `Sections` counts it as it comes: a
file that would become more characters or sections than its `ParseLimits` allow stops there,
while it is parsed, not after the whole expansion sits in memory (a key path repeated on every
leaf made a 16 KB JSON file 20 MB of text; a header repeated on every row, or a heading on
every section, can do the same).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from openbotkit.errors import InvalidInput, Problem

if TYPE_CHECKING:
    from openbotkit.settings import Settings

Parser = Callable[[bytes, "Sections"], None]

DEFAULT_MAX_CHARS = 32 * 1024 * 1024
DEFAULT_MAX_SECTIONS = 100_000
DEFAULT_MAX_UNPACKED_BYTES = 64 * 1024 * 1024


@dataclass
class Section:
    """A run of text and its position: `meta` may hold `page` and `heading`."""

    text: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParseLimits:
    """How much one file may become. `truncate`: keep what was made when a bound is reached
    (an attachment, of which a completion reads the start only) instead of refusing the file."""

    max_chars: int = DEFAULT_MAX_CHARS
    max_sections: int = DEFAULT_MAX_SECTIONS
    max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES
    truncate: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, *, truncate_at: int | None = None) -> ParseLimits:
        """The operator's bounds (OBK_MAX_PARSED_CHARS, OBK_MAX_PARSED_SECTIONS,
        OBK_MAX_UNPACKED_BYTES); with `truncate_at`, at most that many characters, kept."""
        chars = settings.max_parsed_chars
        if truncate_at is not None:
            chars = min(chars, truncate_at)
        return cls(
            chars,
            settings.max_parsed_sections,
            settings.max_unpacked_bytes,
            truncate=truncate_at is not None,
        )


class TextLimit(Exception):
    """A bound of `ParseLimits` was reached while parsing (turned into InvalidInput by `parse`,
    or into a truncated result)."""

    def __init__(
        self, rule: str, setting: str, limit: int, what: str, *, keep: bool = True
    ) -> None:
        super().__init__(f"more than {limit} {what} ({setting})")
        self.rule, self.setting, self.limit, self.what = rule, setting, limit, what
        # Whether what was made so far may stand for the file (text, sections: its start), or
        # the file is refused whatever the mode (an archive past its bound is never unpacked).
        self.keep = keep


class Sections:
    """Where a parser writes: lines under the current heading, cut into sections, every
    character counted as it is written. Each heading starts a section whose text repeats it,
    because a chunk cut from the section still needs to say what it is about."""

    def __init__(self, limits: ParseLimits) -> None:
        self.limits = limits
        self.sections: list[Section] = []
        self.chars = 0
        self.heading = ""
        self.lines: list[str] = []

    def charge(self, chars: int) -> None:
        """Count `chars` more characters of text, refusing them past the bound."""
        self.chars += chars
        if self.chars > self.limits.max_chars:
            raise TextLimit(
                "max_parsed_chars",
                "OBK_MAX_PARSED_CHARS",
                self.limits.max_chars,
                "characters of text",
            )

    def start(self, heading: str) -> None:
        """End the current section; the next lines belong under `heading`."""
        self.end()
        self.heading = heading

    def add(self, line: str) -> None:
        room = self.limits.max_chars - self.chars
        if self.limits.truncate and len(line) + 1 > room:
            self.lines.append(line[: max(room, 0)])  # what fits is kept
        self.charge(len(line) + 1)
        self.lines.append(line)

    def end(self, meta: dict[str, Any] | None = None) -> None:
        """Cut the lines written so far into a section (with `meta` besides its heading)."""
        body = "\n".join(self.lines).strip()
        self.lines.clear()
        if not body:
            return
        if len(self.sections) >= self.limits.max_sections:
            raise TextLimit(
                "max_parsed_sections",
                "OBK_MAX_PARSED_SECTIONS",
                self.limits.max_sections,
                "sections",
            )
        about = {"heading": self.heading} if self.heading else {}
        if self.heading:
            self.charge(len(self.heading) + 1)
            body = f"{self.heading}\n{body}"
        self.sections.append(Section(body, {**about, **(meta or {})}))

    def done(self) -> list[Section]:
        self.end()
        return self.sections

    def kept(self) -> list[Section]:
        """What was made before a bound was reached, the unfinished section included."""
        body = "\n".join(self.lines).strip()
        if body:
            about = {"heading": self.heading} if self.heading else {}
            text = f"{self.heading}\n{body}" if self.heading else body
            self.sections.append(Section(text, about))
        self.lines.clear()
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


def parse(
    data: bytes,
    content_type: str | None,
    name: str | None,
    limits: ParseLimits | None = None,
    *,
    field: str = "/file",
) -> list[Section]:
    """Sections of a file; a clear error (naming `field`, the JSON pointer of the input that
    gave the file) when the type is unsupported, the file is corrupt, or it would become more
    text than `limits` allow."""
    entry = _find(content_type, name)
    label = name or "the file"
    if field != "/file":  # which input gave it (`/attachments/1`), when not the upload's own
        label = f"{label} ({field})"
    if entry is None:
        known = ", ".join(sorted({e for p in PARSERS for e in p.extensions}))
        raise InvalidInput(
            f"cannot read {label} ({content_type or 'unknown type'}); supported: {known}",
            details=[Problem(field, "content_type", "unsupported type")],
        )
    limits = limits or ParseLimits()
    out = Sections(limits)
    try:
        entry.parse(data, out)
        sections = out.done()
    except TextLimit as reached:
        if not (limits.truncate and reached.keep):
            raise InvalidInput(
                f"{label} would become {reached}: refused while parsing as {entry.name}",
                details=[Problem(field, reached.rule, f"at most {reached.limit} {reached.what}")],
            ) from None
        sections = out.kept()
    except InvalidInput:
        raise
    except Exception as exc:  # a corrupt file (or one nested too deep) is the user's to see
        raise InvalidInput(
            f"cannot parse {label} as {entry.name}: {exc}",
            details=[Problem(field, "parse", entry.name)],
        ) from exc
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
