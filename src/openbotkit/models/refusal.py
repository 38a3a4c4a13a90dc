"""What a refusal looks like: an answer saying the information is not in what the bot was given.

One list, used where an answer is marked (retrieval/citations.py: a refusal claims nothing, so it
is neither supported nor unsupported) and where it is scored (services/answer_scoring.py: a
refusal is right for a question the data cannot answer). The default prompt asks for exactly
"I don't know." (models/prompt.py); models vary the words, so the list takes the common ways of
saying it.
"""

from __future__ import annotations

import re

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_SPACE = re.compile(r"\s+")

_NOT = r"(?:could not|couldn't|couldnt|can ?not|can't|cant|did not|didn't|didnt|am unable to|was unable to|unable to)"  # noqa: E501
_SOURCES = r"(?:information|info|facts?|records?|data|context|sources?|texts?|documents?|dataset)"
# Each says that the answer is not in what the bot was given; matched on the normalised answer
# (lower case, straight apostrophes, single spaces), at word boundaries.
REFUSALS: tuple[str, ...] = (
    r"i (?:do not|don't|dont) know",
    rf"{_NOT} (?:find|locate|see|answer|determine|tell|say|provide|give)",
    r"i (?:do not|don't|dont|did not|didn't) (?:have|find|see)"
    rf" (?:that|this|the|any|enough|such)?\s?(?:{_SOURCES}|details?|answer)",
    rf"not (?:in|part of|included in|found in) (?:the|my|this|these|those|your|any) (?:\w+ )?{_SOURCES}",  # noqa: E501
    rf"(?:the|my|these|those) (?:\w+ )?{_SOURCES} (?:do not|does not|don't|doesn't|did not|didn't)"
    r" (?:say|mention|state|include|contain|specify|provide|give|list|cover|tell)",
    rf"no (?:\w+ )?(?:{_SOURCES}|details?|mention)\b (?:about|on|of|regarding|for|is|was|available|given|provided)",  # noqa: E501
    r"(?:is|are|was|were) not (?:mentioned|stated|specified|provided|given|listed|available|known|included)",  # noqa: E501
    r"there is no (?:\w+ )?(?:information|mention|record|data)",
    r"(?:is|are|was|were) unknown",
)
_REFUSAL = re.compile("|".join(rf"\b{r}\b" for r in REFUSALS))


def says_it_cannot_answer(text: str) -> bool:
    """Whether `text` says, in one of the REFUSALS' ways, that the answer is not there."""
    normal = _SPACE.sub(" ", text.translate(_APOSTROPHES).casefold())
    return _REFUSAL.search(normal) is not None
