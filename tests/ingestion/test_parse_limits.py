"""Parser bombs: small files that would expand into far more text than they hold. Each runs in
a fresh interpreter whose peak memory is read before and after (`ru_maxrss`), so what the
parse itself held is measured, not what the test process had lying around."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from openbotkit.errors import InvalidInput
from openbotkit.ingestion.parsers import ParseLimits, parse
from tests.ingestion.samples import pdf_bytes

# What a refused bomb may add to the process's peak memory (the default bounds allow 32 M
# characters of text: a few times that in bytes while lines are joined).
PEAK_BOUND_MB = 300

BOMBS = {
    # A 1 KB heading repeated on each of 60,000 sections: 60 MB from 0.5 MB.
    "markdown": """
        data = ("# " + "h" * 1000 + "\\n" + "## a\\nx\\n" * 60000).encode()
        ctype, name = "text/markdown", "bomb.md"
    """,
    # 200 column names of 1,000 characters, on every one of 3,000 short rows: 600 MB of text
    # from 1.4 MB.
    "csv": """
        header = ",".join(f"c{i}" + "n" * 1000 for i in range(200))
        data = (header + "\\n" + ("a," * 199 + "a\\n") * 3000).encode()
        ctype, name = "text/csv", "bomb.csv"
    """,
    # 3,000 nested blocks each writing all the text inside it: 3,000 copies of 100 KB.
    "html": """
        data = ("<main>" + "<blockquote>" * 3000 + "x " * 50000 + "</blockquote>" * 3000
                + "</main>").encode()
        ctype, name = "text/html", "bomb.html"
    """,
    # A DOCX whose document unpacks to 256 MB of text (a quarter of a MB packed).
    "docx": """
        import io, zipfile
        from tests.ingestion.samples import docx_bytes
        small = zipfile.ZipFile(io.BytesIO(docx_bytes("Title", ["x"])))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
            for info in small.infolist():
                if info.filename != "word/document.xml":
                    bomb.writestr(info, small.read(info))
            with bomb.open("word/document.xml", "w", force_zip64=True) as doc:
                doc.write(b'<w:document xmlns:w="http://schemas.openxmlformats.org/'
                          b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>')
                for _ in range(256):
                    doc.write(b"a" * (1 << 20))
                doc.write(b"</w:t></w:r></w:p></w:body></w:document>")
        data = out.getvalue()
        ctype, name = None, "bomb.docx"
    """,
}


def _run_parse(setup: str) -> dict[str, object]:
    """Build a file in a fresh interpreter, parse it with the default bounds, and report the
    outcome and how far the peak memory rose during the parse."""
    script = textwrap.dedent(setup) + textwrap.dedent(
        """
        import json, resource
        from openbotkit.errors import InvalidInput
        from openbotkit.ingestion.parsers import parse
        parse(b"warm up", "text/plain", None)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        outcome = {"size": len(data)}
        try:
            sections = parse(data, ctype, name)
            outcome["chars"] = sum(len(s.text) for s in sections)
        except InvalidInput as exc:
            outcome["error"] = exc.message
            outcome["details"] = [p.to_json() for p in exc.details]
        outcome["rise_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        print(json.dumps(outcome))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_parser_bomb_is_refused_while_parsing_in_bounded_memory(kind: str) -> None:
    outcome = _run_parse(BOMBS[kind])
    assert "error" in outcome, outcome
    error = str(outcome["error"])
    assert "bomb." in error and "refused while parsing" in error
    if kind == "docx":
        assert "OBK_MAX_UNPACKED_BYTES" in error and str(64 * 1024 * 1024) in error
        assert outcome["details"] == [
            {
                "pointer": "/file",
                "rule": "max_unpacked_bytes",
                "message": "at most 67108864 bytes unpacked",
            }
        ]
    else:
        assert "OBK_MAX_PARSED_CHARS" in error and str(32 * 1024 * 1024) in error
    assert float(str(outcome["rise_mb"])) < PEAK_BOUND_MB, outcome


def test_the_json_key_path_bomb_is_no_bigger_than_its_file() -> None:
    """A long key over many values: each value's line once repeated the whole key (16 KB
    became 20 MB of text); each key is written once now."""
    outcome = _run_parse(
        """
        import json
        data = json.dumps({"k" * 8000: [[i] for i in range(2000)], "n": {"k" * 100: 1}}).encode()
        ctype, name = "application/json", "bomb.json"
        """
    )
    assert "error" not in outcome, outcome
    assert int(str(outcome["chars"])) < 2 * int(str(outcome["size"]))
    assert float(str(outcome["rise_mb"])) < 20


def test_deep_json_is_parsed_without_recursion() -> None:
    deep = b'{"a":' * 900 + b"1" + b"}" * 900
    (section,) = parse(deep, "application/json", "deep.json")
    assert section.text.endswith("a: 1") and len(section.text) < 900 * 40


def test_the_bounds_name_the_field_and_the_setting() -> None:
    limits = ParseLimits(max_chars=1000, max_sections=3)
    with pytest.raises(
        InvalidInput, match=r"big\.txt \(/fileId\) would become more than 1000 characters"
    ):
        parse(b"x" * 5000, "text/plain", "big.txt", limits, field="/fileId")
    with pytest.raises(InvalidInput, match="OBK_MAX_PARSED_SECTIONS") as caught:
        parse(json.dumps([{"a": i} for i in range(10)]).encode(), None, "rows.json", limits)
    assert caught.value.details[0].pointer == "/file"
    assert caught.value.details[0].rule == "max_parsed_sections"


def test_truncating_bounds_keep_the_start() -> None:
    limits = ParseLimits(max_chars=100, truncate=True)
    (section,) = parse(b"word " * 1000, "text/plain", "long.txt", limits)
    assert section.text.startswith("word word") and len(section.text) <= 100
    sections = parse(b"# A\none\n# B\n" + b"two\n" * 100, "text/markdown", "m.md", limits)
    assert sections[0].text == "A\none" and sections[1].text.startswith("B\ntwo")


def test_a_truncated_pdf_keeps_the_start_of_a_long_first_page() -> None:
    """An attachment reads a PDF only as far as it is used: a first page longer than that is
    kept in part, not lost."""
    long_page = "Robots lift boxes. " * 40
    limits = ParseLimits(max_chars=200, truncate=True)
    sections = parse(pdf_bytes([long_page, "Second page."]), "application/pdf", "a.pdf", limits)
    assert len(sections) == 1 and sections[0].text.startswith("Robots lift boxes.")
    assert len(sections[0].text) <= 200
    with pytest.raises(InvalidInput, match="OBK_MAX_PARSED_CHARS"):
        parse(pdf_bytes([long_page]), "application/pdf", "a.pdf", ParseLimits(max_chars=200))
