"""Imports point down: surfaces -> engine -> actions -> services -> runtime -> backends -> parts.

Read from the source (every import, also those inside functions and TYPE_CHECKING blocks), so a
new module that reaches up, or a circle between the parts, fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "openbotkit"

# Higher may import lower, never the reverse. Modules not named here are surfaces (the top).
RANKS: dict[str, int] = {
    "engine": 6,
    "actions": 5,
    "services": 4,
    "runtime": 3,
    "backends": 2,
    "store": 1,
    "retrieval": 1,
    "ingestion": 1,
    "models": 1,
    "abilities": 1,
    "vault": 1,
    "channels": 1,
    "access": 0,
    "errors": 0,
    "ids": 0,
    "settings": 0,
    "localfiles": 0,
    "heap": 0,
}
SURFACE = 7
PARTS = [name for name, rank in RANKS.items() if rank == 1]


def _layer(module: str) -> str:
    """`openbotkit.services.records` -> `services`; the package itself is a surface."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _rank(layer: str) -> int:
    return RANKS.get(layer, SURFACE)


def _imports() -> list[tuple[str, str, int]]:
    """(importing module, imported openbotkit module, line) for every import in the package."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module]
                if node.module == "openbotkit":
                    targets = [f"openbotkit.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            found += [(module, t, node.lineno) for t in targets if t.startswith("openbotkit.")]
    return found


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{src}:{line} imports {dst}"
        for src, dst, line in _imports()
        if _rank(_layer(dst)) > _rank(_layer(src))
    ]
    assert upward == []


@pytest.mark.parametrize("part", PARTS)
def test_parts_import_no_circle(part: str) -> None:
    """The parts (store, retrieval, ingestion, models) may use each other, but not round."""
    edges = {
        (_layer(src), _layer(dst))
        for src, dst, _ in _imports()
        if _layer(src) in PARTS and _layer(dst) in PARTS and _layer(src) != _layer(dst)
    }
    reach, frontier = set(), {part}
    while frontier:
        frontier = {b for a, b in edges if a in frontier} - reach
        reach |= frontier
    assert part not in reach, f"{part} reaches itself through {sorted(edges)}"
