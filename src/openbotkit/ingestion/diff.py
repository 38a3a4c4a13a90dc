"""Chunk-level diff of a file's records against its new chunks: what a re-sync keeps, adds and
removes. Pure functions over texts, so the worker and a dry run compute the same plan.

A record is kept when a new chunk has exactly its text (its id and vector stay, only its meta
may move); texts are matched as a multiset, so a paragraph that moved is kept, not re-embedded.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import zip_longest
from typing import Any

CHANGED_SHOWN = 5


@dataclass(frozen=True)
class Existing:
    """A record made from the file by an earlier sync."""

    id: str
    text: str
    meta: dict[str, Any] | None
    reusable: bool = True  # False when its vector is missing or from another embedder


@dataclass(frozen=True)
class Wanted:
    """A record the file's current content should have."""

    text: str
    meta: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """One changed place: `before` alone was removed, `after` alone added, both: replaced."""

    chunk: int | None
    before: str | None
    after: str | None


@dataclass
class Plan:
    keep: list[tuple[Existing, Wanted]] = field(default_factory=list)
    add: list[Wanted] = field(default_factory=list)
    remove: list[Existing] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)


def plan_diff(old: Sequence[Existing], new: Sequence[Wanted]) -> Plan:
    """Match `new` chunks to `old` records by text; `old` and `new` in document order."""
    pool: dict[str, list[int]] = defaultdict(list)
    for i, rec in enumerate(old):
        if rec.reusable:
            pool[rec.text].append(i)
    plan = Plan()
    matched_old: set[int] = set()
    matched_new: set[int] = set()
    for j, want in enumerate(new):
        candidates = pool.get(want.text)
        if candidates:
            i = candidates.pop(0)
            matched_old.add(i)
            matched_new.add(j)
            plan.keep.append((old[i], want))
        else:
            plan.add.append(want)
    plan.remove = [rec for i, rec in enumerate(old) if i not in matched_old]
    plan.changed = _changes(old, new, matched_old, matched_new)
    return plan


def _changes(
    old: Sequence[Existing],
    new: Sequence[Wanted],
    matched_old: set[int],
    matched_new: set[int],
) -> list[Change]:
    """The first few changed places in document order: aligned so that an edited paragraph
    shows as its old and new text side by side, a moved one not at all."""
    matcher = SequenceMatcher(None, [r.text for r in old], [w.text for w in new], autojunk=False)
    changes: list[Change] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        gone = [old[i].text for i in range(i1, i2) if i not in matched_old]
        came = [j for j in range(j1, j2) if j not in matched_new]
        for before, j in zip_longest(gone, came):
            after = new[j].text if j is not None else None
            changes.append(Change(j, before, after))
            if len(changes) >= CHANGED_SHOWN:
                return changes
    return changes
