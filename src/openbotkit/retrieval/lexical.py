"""Turning a search text into a full-text query: words, lowercased, English stop words out."""

from __future__ import annotations

import re

# The full-text index's tokenizer (migration 0002): porter stemming over unicode61 words with
# diacritics folded.
FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"

_WORD = re.compile(r"\w+", re.UNICODE)
# What FTS5's unicode61 tokenizer reads as one token: a run of letters and digits.
_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)

# A standard English stop-word list (as in common IR toolkits): words that match everywhere and
# only add noise to BM25. Apostrophes split words in FTS5 too, so contractions are left out.
STOP_WORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before being
    below between both but by can cannot could did do does doing don down during each few for
    from further had has have having he her here hers herself him himself his how i if in into
    is it its itself just me more most my myself no nor not now of off on once only or other
    ought our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom why will with would you your yours yourself
    yourselves s t d ll m re ve
    """.split()
)


def query_terms(text: str) -> list[str]:
    """The distinct searchable words of `text`, in order."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOP_WORDS and word not in seen:
            seen[word] = None
    return list(seen)


def count_words(text: str) -> int:
    """Tokens in `text` as the full-text index splits it (porter stemming maps a token to one
    token, so the count does not depend on it): BM25's document length."""
    return len(_TOKEN.findall(text))
