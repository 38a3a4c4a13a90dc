"""Plain text, Markdown and HTML."""

from __future__ import annotations

import re
from typing import Any

from openbotkit.ingestion.parsers.base import Sections, decode_text, register

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@register("text", ("text/plain",), (".txt", ".text", ".log"))
def parse_text(data: bytes, out: Sections) -> None:
    out.add(decode_text(data))


@register("markdown", ("text/markdown", "text/x-markdown"), (".md", ".markdown"))
def parse_markdown(data: bytes, out: Sections) -> None:
    """One section per heading, with the heading path kept (it says what the text is about)."""
    path: list[str] = []
    in_code = False
    for line in decode_text(data).splitlines():
        if line.strip().startswith("```"):
            in_code = not in_code
        match = None if in_code else _MD_HEADING.match(line)
        if match:
            level = len(match.group(1))
            path[:] = [*path[: level - 1], match.group(2)]
            out.start(" > ".join(path))
        else:
            out.add(line)


_SKIP = "script, style, noscript, template, nav, header, footer, aside, form, iframe, svg"
_BLOCKS = (
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "li",
    "pre",
    "blockquote",
    "tr",
    "dt",
    "dd",
    "figcaption",
    "caption",
)


def _inline_text(node: Any) -> str:
    """A block's text with inline markup joined as written and whitespace folded."""
    return " ".join(str(node.text(separator="", strip=False)).split())


@register("html", ("text/html", "application/xhtml+xml"), (".html", ".htm", ".xhtml"))
def parse_html(data: bytes, out: Sections) -> None:
    """Main content only (no scripts, navigation, headers, footers), by heading."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(decode_text(data))
    for node in tree.css(_SKIP):
        node.decompose()
    root = tree.css_first("main") or tree.css_first("article") or tree.body or tree.root
    if root is None:
        return
    for node in root.traverse(include_text=False):
        tag = node.tag
        if tag not in _BLOCKS:
            continue
        if tag in ("li", "dd") and node.parent is not None and node.parent.tag in ("li", "dd"):
            continue
        if tag == "tr":
            cells = [_inline_text(c) for c in node.css("th, td")]
            text = " | ".join(c for c in cells if c)
        else:
            text = _inline_text(node)
        if not text:
            continue
        if tag[0] == "h" and tag[1:].isdigit():
            out.start(text)
        elif tag == "li":
            out.add(f"- {text}")
        else:
            out.add(text)
    out.end()
    if not out.sections:  # pages without block markup still have text
        out.start("")
        out.add(root.text(separator="\n", strip=True))
