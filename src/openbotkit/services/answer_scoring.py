"""Scoring one answer against what was expected: right, refused, or wrong.

The rules of the grounded-qa collection (docs/evaluation.md), written so that a reader can
predict every verdict:

- **Right** (a question with expected answers): the answer contains one of them, ignoring case,
  runs of white space, and thousands separators between digits (`4,722`, `4 722` and `4722`
  are the same number). An expected answer that begins or ends with a digit must not be part
  of a longer number: `494` is not found in `1494`, `4945` or `494.5`.
- **Refused**: the answer says, in words a person understands, that the information is not
  there (models/refusal.py: "I don't know", "I couldn't find that", "it is not in the
  information I have", "there is no information about ..."), and it states no value: no
  number appears in it that the question does not hold. "I don't know, but it is about 40 kg"
  is not a refusal; "I couldn't find the Dorfen-6's colour" is (6 is in the question).
- **Wrong**: anything else. For an answerable question a refusal is not counted wrong but
  `refused` (the bot did not mislead anyone); for an unanswerable one, only a refusal is right.

Values in words (a colour, a place) cannot be told from other words without knowing what was
asked, so a refusal that also names one ("I don't know; it is red") counts as a refusal: the
number rule is the part that is checked mechanically, and a stored answer can always be read
(`evaluate_bot` returns every answer's text).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from openbotkit.models.refusal import says_it_cannot_answer

Verdict = Literal["right", "refused", "wrong"]

# A thousands separator: a comma, a space (plain, no-break, thin or narrow no-break) or an
# apostrophe between a digit and exactly three digits that end the number.
_SEPARATOR = re.compile(r"(?<=\d)[,' \u00a0\u2009\u202f](?=\d{3}(?!\d))")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_SPACE = re.compile(r"\s+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """Lower case, straight apostrophes, single spaces, and no thousands separators."""
    text = _SPACE.sub(" ", text.translate(_APOSTROPHES).casefold()).strip()
    return _SEPARATOR.sub("", text)


def contains_answer(answer: str, expected: str) -> bool:
    """Whether `answer` holds `expected` (see the module's rules)."""
    needle = normalise(expected)
    if not needle:
        return False
    before = r"(?<![\d.])" if needle[0].isdigit() else ""
    after = r"(?!\d|\.\d)" if needle[-1].isdigit() else ""
    return re.search(before + re.escape(needle) + after, normalise(answer)) is not None


def states_a_number(answer: str, question: str) -> bool:
    """Whether the answer holds a number the question does not (`Dorfen-6` gives 6 away)."""
    given = set(_NUMBER.findall(normalise(question)))
    return any(n not in given for n in _NUMBER.findall(normalise(answer)))


def is_refusal(answer: str, question: str) -> bool:
    """Whether the answer says the information is not there, and states no value."""
    return says_it_cannot_answer(answer) and not states_a_number(answer, question)


def verdict(answer: str, question: str, expected: Sequence[str] | None) -> Verdict:
    """The verdict on one answer; `expected` None means the question cannot be answered from
    the data (only a refusal is right)."""
    if expected is not None and any(contains_answer(answer, e) for e in expected):
        return "right"
    return "refused" if is_refusal(answer, question) else "wrong"
