"""PDF (the text layer, page by page) and DOCX (paragraphs by heading, tables as rows)."""

from __future__ import annotations

import io

from openbotkit.errors import InvalidInput
from openbotkit.ingestion.parsers.base import Section, SectionBuilder, register


@register("pdf", ("application/pdf",), (".pdf",))
def parse_pdf(data: bytes) -> list[Section]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    sections = []
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        sections.append(Section(text, {"page": number}))
    if not any(s.text.strip() for s in sections):
        raise InvalidInput("the PDF has no text layer (scanned pages need OCR first)")
    return sections


@register(
    "docx",
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",),
    (".docx",),
)
def parse_docx(data: bytes) -> list[Section]:
    from docx import Document

    doc = Document(io.BytesIO(data))
    builder = SectionBuilder()
    for paragraph in doc.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if style.lower().startswith(("heading", "title")):
            builder.start(text)
        elif "list" in style.lower():
            builder.add(f"- {text}")
        else:
            builder.add(text)
    sections = builder.done()
    for table in doc.tables:
        rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows]
        if rows:
            sections.append(Section("\n".join(rows), {"table": True}))
    return sections
