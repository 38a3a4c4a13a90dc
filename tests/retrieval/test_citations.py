"""The citation alignment on fixed answers, with the bundled embedder."""

from __future__ import annotations

import pytest

from openbotkit.retrieval.citations import SourceRecord, align, sentences
from openbotkit.retrieval.embedders import Embedder

ROBOT = SourceRecord(
    "rec-robot",
    "ds-1",
    "file:///file-1",
    "Robots of the Zephyr line.\n"
    "- The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms.\n"
    "- It charges in 90 minutes and runs for 8 hours.",
)
OFFICE = SourceRecord(
    "rec-office", "ds-1", None, "Our office is open Monday to Friday, 9am to 5pm."
)
INVENTED = "Its first prototype was assembled by penguins in Antarctica."


def test_sentences_have_exact_spans_and_skip_list_markers() -> None:
    text = '1. First item.\n2. It weighs 3.5 kg, e.g. when full! Is it? "Yes."\nLast line'
    found = sentences(text)
    assert [s.text for s in found] == [
        "First item.",
        "It weighs 3.5 kg, e.g. when full!",
        "Is it?",
        '"Yes."',
        "Last line",
    ]
    assert all(text[s.start : s.end] == s.text for s in found)
    assert found[1].numbers == {"3.5"}


def test_sentences_of_blank_or_punctuation_only_text() -> None:
    assert sentences("") == [] and sentences(" \n - \n ...") == []


@pytest.mark.slow
def test_supported_sentences_cite_a_verbatim_quote_and_invented_ones_do_not(
    local_embedder: Embedder,
) -> None:
    answer = (
        "The Zephyr-9 robot has a maximum payload of 42 kilograms. "
        f"{INVENTED} "
        "The office is open from 9am to 5pm."
    )
    out = align(answer, [ROBOT, OFFICE], local_embedder)
    cited = {answer[c.start : c.end]: c for c in out.citations}
    assert set(cited) == {
        "The Zephyr-9 robot has a maximum payload of 42 kilograms.",
        "The office is open from 9am to 5pm.",
    }
    robot = cited["The Zephyr-9 robot has a maximum payload of 42 kilograms."]
    assert (robot.record_id, robot.dataset_id, robot.source) == (
        "rec-robot",
        "ds-1",
        "file:///file-1",
    )
    assert robot.quote == "The Zephyr-9 warehouse robot has a maximum payload of 42 kilograms."
    for c in out.citations:
        record = ROBOT if c.record_id == ROBOT.id else OFFICE
        assert c.quote in record.text
    assert [answer[s:e] for s, e in out.unsupported] == [INVENTED]
    claims = sentences(answer)
    total = sum(s.end - s.start for s in claims)
    assert out.grounding == round((total - len(INVENTED)) / total, 4)


@pytest.mark.slow
def test_a_wrong_figure_is_unsupported_however_similar_the_words(
    local_embedder: Embedder,
) -> None:
    answer = "The Zephyr-9 warehouse robot has a maximum payload of 50 kilograms."
    out = align(answer, [ROBOT], local_embedder)
    assert out.citations == [] and out.unsupported == [(0, len(answer))]
    assert out.grounding == 0.0


def test_a_paraphrase_in_other_words_reads_as_unsupported(local_embedder: Embedder) -> None:
    """Support is strict: words the record does not hold are not vouched for, even where a
    person would call them a paraphrase (the side to err on for a trust figure)."""
    out = align("The Zephyr-9 can carry up to 42 kilograms.", [ROBOT], local_embedder)
    assert (out.citations, out.grounding) == ([], 0.0)


ORCHIDS = SourceRecord(
    "rec-orchids",
    "ds-1",
    None,
    "The Orrin-5 greenhouse keeps its orchids at exactly 23 degrees Celsius.",
)


@pytest.mark.parametrize(
    "answer",
    [
        "The orchids are not in the sun.",  # the console's example: on topic, not stated
        "The Orrin-5 greenhouse keeps its orchids at exactly 24 degrees Celsius.",
        "The Orrin-5 greenhouse does not keep its orchids at 23 degrees Celsius.",
        "The Orrin-5 greenhouse keeps and sells its orchids at 23 degrees Celsius.",
        "The Orrin-6 greenhouse keeps its orchids at exactly 23 degrees Celsius.",
    ],
)
def test_a_sentence_the_record_does_not_state_is_unsupported(
    answer: str, local_embedder: Embedder
) -> None:
    out = align(answer, [ORCHIDS], local_embedder)
    assert (out.citations, out.grounding) == ([], 0.0)


@pytest.mark.parametrize(
    "answer",
    [
        "The Orrin-5 greenhouse keeps its orchids at 23 degrees Celsius.",
        "23 degrees Celsius.",
        "Exactly 23 degrees Celsius, in the Orrin-5 greenhouse.",
    ],
)
def test_a_sentence_the_record_states_is_supported(answer: str, local_embedder: Embedder) -> None:
    out = align(answer, [ORCHIDS], local_embedder)
    assert out.grounding == 1.0 and out.citations[0].record_id == "rec-orchids"


@pytest.mark.parametrize(
    "answer", ["I don't know.", "I do not know.", "I couldn't find that in the information I have."]
)
def test_a_refusal_is_neither_supported_nor_unsupported(
    answer: str, local_embedder: Embedder
) -> None:
    assert align(answer, [ORCHIDS], local_embedder).as_meta() == {
        "citations": [],
        "unsupported": [],
        "grounding": None,
    }


@pytest.mark.slow
def test_without_records_everything_is_unsupported(local_embedder: Embedder) -> None:
    out = align("Paris is the capital of France. It is big.", [], local_embedder)
    assert out.citations == [] and out.unsupported == [(0, 31), (32, 42)]
    assert out.grounding == 0.0
    assert align("", [ROBOT], local_embedder).as_meta() == {
        "citations": [],
        "unsupported": [],
        "grounding": 0.0,
    }


@pytest.mark.slow
def test_meta_shape(local_embedder: Embedder) -> None:
    answer = "It charges in 90 minutes."
    meta = align(answer, [ROBOT], local_embedder).as_meta()
    assert meta["citations"] == [
        {
            "start": 0,
            "end": len(answer),
            "recordId": "rec-robot",
            "datasetId": "ds-1",
            "source": "file:///file-1",
            "quote": "It charges in 90 minutes and runs for 8 hours.",
        }
    ]
    assert meta["unsupported"] == [] and meta["grounding"] == 1.0
