"""The docs stay true: the action reference is generated, every setting is in the README."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from openbotkit.settings import ENV_VARS

ROOT = Path(__file__).resolve().parent.parent


def test_action_reference_is_up_to_date() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("variable", [*ENV_VARS, "OBK_HOME", "OBK_ALLOW_PRIVATE_URLS"])
def test_every_setting_is_documented_in_the_readme(variable: str) -> None:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert f"`{variable}`" in "".join(page.read_text() for page in pages)
