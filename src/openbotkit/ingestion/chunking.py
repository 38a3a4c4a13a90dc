"""Token-aware chunking: sections are cut at the dataset's separators and packed into records of
at most `recordMaxTokens` tokens of the embedder, with a small overlap between neighbours."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from openbotkit.ingestion.parsers import Section
from openbotkit.retrieval.embedders import Embedder

DEFAULT_MAX_TOKENS = 200  # MiniLM reads 256 tokens; leave room for the heading line
DEFAULT_SEPARATORS = ("\n\n", "\n", ". ")
OVERLAP_FRACTION = 0.1


@dataclass(frozen=True)
class Chunk:
    text: str
    meta: dict[str, Any]


def _separators(custom: str | None) -> tuple[str, ...]:
    if custom:
        # A dataset's `separators` is one string; "\\n" written literally means a newline.
        given = custom.encode().decode("unicode_escape") if "\\" in custom else custom
        return (given, *(s for s in DEFAULT_SEPARATORS if s != given))
    return DEFAULT_SEPARATORS


def _pieces(text: str, embedder: Embedder, limit: int, separators: tuple[str, ...]) -> list[str]:
    """Cut text at the first separator that helps until every piece fits `limit` tokens."""
    if embedder.count_tokens(text) <= limit:
        return [text]
    for i, sep in enumerate(separators):
        parts = [p for p in text.split(sep) if p.strip()]
        if len(parts) > 1:
            out: list[str] = []
            for part in parts:
                out += _pieces(part.strip(), embedder, limit, separators[i + 1 :])
            return out
    return embedder.split_tokens(text, limit)


def chunk_sections(
    sections: list[Section],
    embedder: Embedder,
    *,
    max_tokens: int | None = None,
    separators: str | None = None,
) -> list[Chunk]:
    """Records-to-be for a file: packed paragraphs, each with its section's meta and position."""
    limit = min(max_tokens or DEFAULT_MAX_TOKENS, embedder.max_tokens)
    overlap_tokens = int(limit * OVERLAP_FRACTION)
    seps = _separators(separators)
    chunks: list[Chunk] = []
    for section in sections:
        pieces = _pieces(section.text.strip(), embedder, limit, seps)
        joiner = seps[0] if seps[0].strip() == "" else " "
        current: list[str] = []
        size = 0
        for piece in pieces:
            tokens = embedder.count_tokens(piece)
            if current and size + tokens > limit:
                chunks.append(Chunk(joiner.join(current), dict(section.meta)))
                # Carry the tail of the previous chunk over so a fact cut in two stays findable.
                tail = current[-1] if embedder.count_tokens(current[-1]) <= overlap_tokens else ""
                current, size = ([tail], embedder.count_tokens(tail)) if tail else ([], 0)
            current.append(piece)
            size += tokens
        if current:
            chunks.append(Chunk(joiner.join(current), dict(section.meta)))
    for i, chunk in enumerate(chunks):
        chunk.meta["chunk"] = i
    return [c for c in chunks if re.search(r"\w", c.text)]
