"""Answer scoring on fixed examples: right, refused and wrong as docs/evaluation.md states them."""

from __future__ import annotations

import pytest

from openbotkit.services.answer_scoring import contains_answer, is_refusal, normalise, verdict
from openbotkit.services.bot_evaluation import percentile, summary

PRICE = "How much does the Quindor-3 tractor cost?"
COLOUR = "What colour is the Dorfen-6 e-bike?"


@pytest.mark.parametrize(
    "answer",
    [
        "The Quindor-3 tractor costs 4722 euros.",
        "It costs 4,722 euros.",
        "It costs 4 722 euros.",
        "It costs 4\u202f722 euros.",  # a narrow no-break space, as some locales print it
        "4722",
        "The price is EUR 4,722.",
    ],
)
def test_an_answer_holding_the_expected_number_is_right(answer: str) -> None:
    assert verdict(answer, PRICE, ["4722"]) == "right"


def test_expected_answers_are_matched_without_case_and_with_any_spacing() -> None:
    question = "Where is the Norgar-5 3D printer assembled?"
    assert verdict("It is assembled in   VORCALTAM.", question, ["Vorcaltam"]) == "right"
    assert verdict("In the town of Vorcaltam", question, ["Lisbon", "vorcaltam"]) == "right"
    assert verdict("It is assembled in Vorvoryar.", question, ["Vorcaltam"]) == "wrong"


@pytest.mark.parametrize(
    ("answer", "found"),
    [
        ("It costs 4722 euros.", True),
        ("It costs 14722 euros.", False),  # a longer number is another number
        ("It costs 47220 euros.", False),
        ("It costs 4722.5 euros.", False),
        ("It costs 4,722,000 euros.", False),
        ("Price: 4722.", True),  # a full stop ends the number
    ],
)
def test_a_number_is_not_found_inside_a_longer_one(answer: str, found: bool) -> None:
    assert contains_answer(answer, "4722") is found


def test_separators_are_only_those_between_thousands() -> None:
    assert normalise("1,234,567 and 12,5 and 3, 4") == "1234567 and 12,5 and 3, 4"


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know.",
        "I do not know",
        "I don\u2019t know.",  # a typographic apostrophe
        "I couldn't find that in the information I have.",
        "I could not find the colour of the Dorfen-6 e-bike.",
        "Sorry, I cannot answer that from the information I have.",
        "That is not in the information I have.",
        "The information does not say what colour it is.",
        "There is no information about its colour.",
        "The records don't mention the colour.",
        "The colour of the Dorfen-6 e-bike is not mentioned.",
        "I don't have that information.",
        "Its colour is unknown.",
    ],
)
def test_refusals_in_plain_words_are_right_for_an_unanswerable_question(answer: str) -> None:
    assert is_refusal(answer, COLOUR)
    assert verdict(answer, COLOUR, None) == "refused"


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know, but it weighs 40 kilograms.",  # a refusal that states a value
        "I couldn't find the colour; the battery holds 494 Wh.",
        "The e-bike is red.",  # answered with a value
        "The Dorfen-6 e-bike is 3 metres long.",
        "",
        "I'm not sure.",  # not saying the information is missing
        "The orchids are not in the sun.",
    ],
)
def test_anything_but_a_plain_refusal_is_wrong_for_an_unanswerable_question(answer: str) -> None:
    assert verdict(answer, COLOUR, None) == "wrong"


def test_numbers_the_question_holds_do_not_make_a_refusal_state_a_value() -> None:
    assert verdict("I could not find the colour of the Dorfen-6.", COLOUR, None) == "refused"
    assert verdict("I could not find the colour of the Dorfen-7.", COLOUR, None) == "wrong"


def test_a_refusal_of_an_answerable_question_is_refused_not_right_nor_wrong() -> None:
    assert verdict("I don't know.", PRICE, ["4722"]) == "refused"
    assert verdict("I don't know; maybe 5000 euros.", PRICE, ["4722"]) == "wrong"
    # Right wins: the expected value is in the answer, hedged or not.
    assert verdict("I don't know exactly, but it costs 4,722 euros.", PRICE, ["4722"]) == "right"


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([float(n) for n in range(1, 21)], 95) == pytest.approx(19.05)
    assert percentile([7.0], 95) == 7.0


def test_summary_counts_each_kind_of_question_apart() -> None:
    def row(answerable: bool, verdict: str, supported: bool, seconds: float) -> dict[str, object]:
        return {
            "answerable": answerable,
            "verdict": verdict,
            "supported": supported,
            "seconds": seconds,
        }

    rows = [
        row(True, "right", True, 1.0),
        row(True, "wrong", True, 2.0),  # wrong and shown as supported
        row(True, "refused", False, 3.0),
        row(True, "wrong", False, 4.0),
        row(False, "refused", False, 5.0),
        row(False, "wrong", True, 6.0),  # an unanswerable question answered, "supported"
    ]
    out = summary("b1", rows, kept=False)
    assert out["answerable"] == {
        "count": 4,
        "right": 1,
        "refused": 1,
        "wrong": 2,
        "rightRate": 0.25,
        "refusedRate": 0.25,
        "wrongRate": 0.5,
    }
    assert out["unanswerable"] == {
        "count": 2,
        "refused": 1,
        "wrong": 1,
        "refusedRate": 0.5,
        "wrongRate": 0.5,
    }
    assert out["wrongSupported"] == 2
    assert out["seconds"] == {"p50": 3.5, "p95": 5.75, "total": 21.0}
    # No unanswerable question: no rate of them (0% would read as "never refuses").
    assert summary("b1", rows[:4], kept=False)["unanswerable"] == {
        "count": 0,
        "refused": 0,
        "wrong": 0,
    }
