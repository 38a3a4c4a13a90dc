from __future__ import annotations

from openbotkit.retrieval.lexical import fts_match, query_terms


def test_query_terms_drop_stop_words_and_repeats() -> None:
    assert query_terms("What is the payload of the Zephyr-9 robot? The robot!") == [
        "payload",
        "zephyr",
        "9",
        "robot",
    ]


def test_fts_match_quotes_terms_so_syntax_is_inert() -> None:
    assert fts_match('NEAR(a b) OR "x"') == '"near" OR "b" OR "x"'
    assert fts_match("the of and") is None
