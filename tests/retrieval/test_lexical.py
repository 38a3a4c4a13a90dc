from __future__ import annotations

import sqlite3

import pytest

from openbotkit.retrieval.lexical import FTS_TOKENIZE, count_words, query_terms


def test_query_terms_drop_stop_words_and_repeats() -> None:
    assert query_terms("What is the payload of the Zephyr-9 robot? The robot!") == [
        "payload",
        "zephyr",
        "9",
        "robot",
    ]


@pytest.mark.parametrize(
    "text", ["The Zephyr-9's payload: 42_kg, café!", "naïve—résumé\ttabs  and\nlines", "日本語 x"]
)
def test_count_words_splits_as_the_index_does(text: str) -> None:
    """The word count is BM25's document length: it must be FTS5's own token count."""
    db = sqlite3.connect(":memory:")
    db.execute(f"CREATE VIRTUAL TABLE t USING fts5(text, tokenize='{FTS_TOKENIZE}')")
    db.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    db.execute("INSERT INTO t(text) VALUES (?)", (text,))
    assert count_words(text) == db.execute("SELECT count(*) FROM v").fetchone()[0]
