from __future__ import annotations

import json

import pytest

from openbotkit.errors import InvalidInput
from openbotkit.ingestion.parsers import parse
from tests.ingestion.samples import HTML, MARKDOWN, docx_bytes, pdf_bytes


def test_pdf_text_layer_page_by_page() -> None:
    sections = parse(
        pdf_bytes(["First page about robots.", "Second page about cats."]),
        "application/pdf",
        "a.pdf",
    )
    assert [(s.text.strip(), s.meta["page"]) for s in sections] == [
        ("First page about robots.", 1),
        ("Second page about cats.", 2),
    ]


def test_corrupt_pdf_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match=r"cannot parse broken\.pdf as pdf"):
        parse(b"%PDF-1.4 garbage", "application/pdf", "broken.pdf")


def test_docx_headings_paragraphs_and_tables() -> None:
    data = docx_bytes(
        "Returns", ["Send it back within 30 days."], [["Item", "Days"], ["Robot", "30"]]
    )
    sections = parse(data, None, "policy.docx")
    assert sections[0].text == "Returns\nSend it back within 30 days."
    assert sections[0].meta == {"heading": "Returns"}
    assert sections[1].text == "Item | Days\nRobot | 30"


def test_html_keeps_main_content_only() -> None:
    (section,) = parse(HTML, "text/html; charset=utf-8", None)
    assert section.meta == {"heading": "Zephyr-9 support"}
    assert "The Zephyr-9 battery lasts eight hours." in section.text
    assert "- Charge weekly" in section.text and "Wheel | 12 EUR" in section.text
    for noise in ("track()", "Home", "Shop", "Copyright"):
        assert noise not in section.text


def test_markdown_sections_carry_their_heading_path() -> None:
    sections = parse(MARKDOWN, "text/markdown", None)
    assert [s.meta.get("heading") for s in sections] == [
        "Zephyr-9 manual",
        "Zephyr-9 manual > Safety",
        "Zephyr-9 manual > Cleaning",
    ]
    assert sections[2].text.endswith("Wipe the sensors with a dry cloth once a week.")


def test_csv_rows_keep_column_names() -> None:
    (section,) = parse(b"name,payload\nZephyr-9,42 kg\nZephyr-7,30 kg\n", "text/csv", None)
    assert section.text == "name: Zephyr-9; payload: 42 kg\n\nname: Zephyr-7; payload: 30 kg"


def test_json_is_an_outline_with_each_key_once() -> None:
    data = json.dumps([{"model": "Z9", "specs": {"payload": 42}}, {"model": "Z7"}]).encode()
    sections = parse(data, "application/json", None)
    assert sections[0].text == "model: Z9\nspecs:\n  payload: 42"
    assert sections[0].meta == {"item": 0}
    assert sections[1].text == "model: Z7"
    nested = {
        "name": "Zephyr",
        "tags": ["robot", "home"],
        "parts": [{"part": "wheel", "price": 12.5}, {"part": "arm", "spare": None}],
        "empty": {},
        "ok": True,
    }
    (section,) = parse(json.dumps(nested).encode(), "application/json", None)
    assert section.text == (
        "name: Zephyr\ntags: robot, home\nparts:\n  - part: wheel\n    price: 12.5\n"
        "  - part: arm\n    spare: null\nok: true"
    )


def test_unsupported_type_names_what_is_supported() -> None:
    with pytest.raises(InvalidInput, match=r"supported: .*\.pdf"):
        parse(b"\x89PNG....", "image/png", "photo.png")
