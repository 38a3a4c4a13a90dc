"""PDF (the text layer, page by page) and DOCX (paragraphs by heading, tables as rows)."""

from __future__ import annotations

import io
import zipfile
from typing import Any

from openbotkit.errors import InvalidInput
from openbotkit.ingestion.parsers.base import Sections, TextLimit, register


class _PageFull(Exception):
    """A page's text passed the bound of a truncating parse: what was found of it is kept."""


@register("pdf", ("application/pdf",), (".pdf",))
def parse_pdf(data: bytes, out: Sections) -> None:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    for number, page in enumerate(reader.pages, start=1):
        out.add(_page_text(page, out))
        out.end({"page": number})
    if not out.sections:
        raise InvalidInput("the PDF has no text layer (scanned pages need OCR first)")


def _page_text(page: Any, out: Sections) -> str:
    """A page's text, counted as pypdf finds it: form XObjects drawn inside each other multiply
    a page's text, and such a page stops at the bound rather than once it is all extracted (a
    truncating parse keeps the start found so far; `add` keeps what fits)."""
    seen = 0
    found: list[str] = []

    def count(text: str, *_args: Any) -> None:
        nonlocal seen
        seen += len(text)
        if out.limits.truncate:
            found.append(text)
        if out.chars + seen > out.limits.max_chars:
            if out.limits.truncate:
                raise _PageFull
            out.charge(seen)

    try:
        return str(page.extract_text(visitor_text=count) or "")
    except _PageFull:
        return "".join(found)


def _check_unpacked(data: bytes, out: Sections) -> None:
    """Refuse an archive that would unpack past the bound before anything is unpacked. The
    sizes its directory declares are the most `zipfile` reads of each member (it stops there
    and fails the checksum), so a member that lies about its size cannot unpack more."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        total = sum(info.file_size for info in archive.infolist())
    limit = out.limits.max_unpacked_bytes
    if total > limit:
        raise TextLimit(
            "max_unpacked_bytes", "OBK_MAX_UNPACKED_BYTES", limit, "bytes unpacked", keep=False
        )


@register(
    "docx",
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    (".docx",),
)
def parse_docx(data: bytes, out: Sections) -> None:
    from docx import Document

    _check_unpacked(data, out)
    doc = Document(io.BytesIO(data))
    for paragraph in doc.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")):
            out.start(text)
        elif "list" in style.lower():
            out.add(f"- {text}")
        else:
            out.add(text)
    out.start("")  # tables stand apart from the last heading
    for table in doc.tables:
        for row in table.rows:
            out.add(" | ".join(cell.text.strip() for cell in row.cells))
        out.end({"table": True})
