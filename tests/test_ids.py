"""Ids: sortable in creation order, and 80 fresh random bits each, even within a millisecond."""

from __future__ import annotations

import itertools
import re

import pytest

from openbotkit import ids


def random_part(ident: str) -> int:
    return int("".join(f"{ids.ALPHABET.index(c):05b}" for c in ident[-ids.RANDOM_CHARS :]), 2)


def test_ids_sort_in_creation_order_and_fit_their_columns() -> None:
    made = [ids.new_id() for _ in range(5_000)]
    assert made == sorted(made) and len(set(made)) == len(made)
    assert all(re.fullmatch(r"[0-9a-hjkmnp-tv-z]{30}", i) for i in made)
    assert ids.ID_LENGTH == 30 <= 40  # String(40) columns


def test_ids_of_one_millisecond_share_nothing_but_time_and_rank() -> None:
    made = [ids.new_id() for _ in range(5_000)]
    pairs = [(a, b) for a, b in itertools.pairwise(made) if a[:10] == b[:10]]
    assert len(pairs) > 100  # thousands of ids a millisecond on any machine
    assert all(a[10:14] < b[10:14] for a, b in pairs)  # their rank in the millisecond
    # Each of the 80 random bits is set in about half the ids, independently of its neighbour
    # in time: what a fresh draw gives, and what a counter (the old scheme) does not.
    values = [random_part(i) for i in made]
    assert ids.RANDOM_BITS == 80 and ids.RANDOM_CHARS * 5 == 80
    for bit in range(80):
        share = sum(v >> bit & 1 for v in values) / len(values)
        assert 0.44 < share < 0.56, (bit, share)
    flips = [bin(random_part(a) ^ random_part(b)).count("1") for a, b in pairs]
    assert 36 < sum(flips) / len(flips) < 44  # ~40 of 80 bits differ between neighbours
    assert min(flips) > 10


def test_a_full_sequence_borrows_the_next_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    ms = ids.now_ms()
    monkeypatch.setattr(ids, "now_ms", lambda: ms)
    with ids._lock:
        ids._last = (ms, 32**ids.SEQUENCE_CHARS - 1)
    after = ids.new_id()
    assert after[:10] == ids._b32(ms + 1, 10) and after[10:14] == "0000"
