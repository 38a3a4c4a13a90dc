"""Citations: which sentences of an answer the records in its prompt state, and where.

After a completion, every sentence of the answer is compared with every sentence of the records
that were put in the prompt. A sentence is supported by the record sentence that scores best
among those that *state* it (below); the record sentence is then quoted verbatim (a slice of the
record's text), so anyone can check the claim against the record later. Sentences nothing
supports are reported as `unsupported` spans, and `grounding` is the supported share of the
answer's characters.

The score mixes meaning and wording: `COSINE_WEIGHT` x the cosine of the two sentences' embeddings
(the installation's embedder, passed in) plus the rest x the share of the answer sentence's
content words found in the record sentence. A similar sentence is not yet one that says the same
thing: "The orchids are not in the sun." is close in meaning to "The greenhouse keeps its orchids
at 23 degrees", and "The e-bike is assembled and repaired in Cornorros" to "The e-bike is
assembled in Cornorros". So a record sentence states a claim only when, besides the score,
  - every figure of the claim is in it (a wrong number is the typical unfaithful answer),
  - every content word of the claim is in it, up to inflection ("meets"/"meet",
    "assembled"/"assembles"): an added clause or attribute is not supported by its neighbours,
  - it negates when the claim negates, and not otherwise.
This makes support strict: a paraphrase with other words reads as unsupported. That is the side
to err on, since `grounding` tells a reader how far to trust an answer. The score then only
picks the quote among the sentences that state a claim, and decides for a claim with no content
word or figure ("Yes, it is."), which must reach `SUPPORT_THRESHOLD`.

A sentence that refuses ("I don't know", "The records do not say ...": models/refusal.py) makes
no claim: it is neither supported nor unsupported, and an answer of nothing else has grounding
None. In "I don't know its colour, but it weighs 40 kg." the claim is still checked.

It is computed from text alone, so it works the same for every language model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from openbotkit.models.refusal import says_it_cannot_answer
from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.lexical import query_terms

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

# numpy is imported by the functions that compute: every action module imports this one (through
# completion), and the connector's plain reads start without numpy.

# Measured by bench/citations.py on the SciFact subset (82 claims), before the "states" rules were
# added: each claim against the abstracts that support or refute it (positives, 91 pairs), against a
# random other abstract (shuffled) and against the non-evidence abstract sharing the most words with
# it (hard negatives: on-topic text that does not say it, like a retriever's near misses). The
# weight has the best ROC AUC against both (0.937 shuffled, 0.830 hard; pure cosine 0.938 / 0.827,
# pure word overlap 0.942 / 0.717). The threshold has the best Youden's J against the hard
# negatives: 82% of positives pass it, 32% of hard negatives and 2% of shuffled ones.
COSINE_WEIGHT = 0.75
SUPPORT_THRESHOLD = 0.5

# A sentence runs from a non-space character to the first run of . ! ? (closing quotes or
# brackets included) followed by whitespace and a character that is not a lowercase letter, or
# to the end of its line: "3.5" and "e.g. when" do not end one. A list marker at the start of a
# line is not part of the sentence after it.
_IN_LINE = re.compile(r"\S.*?(?:[.!?]+[\"'”’)\]]*(?=\s+(?![a-z])|\s*$)|$)")
_LIST_MARKER = re.compile(r"[ \t]*(?:(?:[-*•]|\d{1,3}[.)])[ \t]+)?")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|neither|nor|without|cannot)\b|n[’']t\b", re.I
)
# Endings that inflect one word ("assembles", "assembled", "assembling" -> "assembl"); longest
# first. Anything finer than inflection is for the embedding to see.
_SUFFIXES = ("ing", "ed", "es", "s")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text: its span, and the words, figures and negation matching compares."""

    start: int
    end: int
    text: str
    terms: frozenset[str]
    numbers: frozenset[str]
    negated: bool = False


@dataclass(frozen=True)
class SourceRecord:
    """A record as it was put in the prompt."""

    id: str
    dataset_id: str
    source: str | None
    text: str


@dataclass(frozen=True)
class Citation:
    start: int
    end: int
    record_id: str
    dataset_id: str
    source: str | None
    quote: str
    score: float


@dataclass(frozen=True)
class Alignment:
    citations: list[Citation]
    unsupported: list[tuple[int, int]]
    # The supported share of the answer's characters; None for a refusal (it claims nothing).
    grounding: float | None

    def as_meta(self) -> dict[str, Any]:
        """The message meta keys, in the API's camelCase."""
        return {
            "citations": [
                {
                    "start": c.start,
                    "end": c.end,
                    "recordId": c.record_id,
                    "datasetId": c.dataset_id,
                    "source": c.source,
                    "quote": c.quote,
                }
                for c in self.citations
            ],
            "unsupported": [{"start": s, "end": e} for s, e in self.unsupported],
            "grounding": self.grounding,
        }


def _stem(word: str) -> str:
    """The word without an inflecting ending, keeping at least three letters."""
    if word.endswith("ss"):
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _numbers(text: str) -> frozenset[str]:
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(text))


def sentences(text: str) -> list[Sentence]:
    """The sentences of `text` with their character spans (list markers left out)."""
    out = []
    offset = 0
    for line in text.split("\n"):
        marker = _LIST_MARKER.match(line)
        for match in _IN_LINE.finditer(line, marker.end() if marker else 0):
            body = match.group().rstrip()
            if any(ch.isalnum() for ch in body):
                start = offset + match.start()
                terms = frozenset(_stem(t) for t in query_terms(body))
                negated = bool(_NEGATION.search(body))
                out.append(Sentence(start, start + len(body), body, terms, _numbers(body), negated))
        offset += len(line) + 1
    return out


def states(evidence: Sentence, claim: Sentence) -> bool:
    """Whether the evidence sentence holds every figure and content word of the claim, and
    negates exactly when the claim does."""
    return (
        claim.numbers <= evidence.numbers
        and claim.terms <= evidence.terms
        and claim.negated == evidence.negated
    )


def is_supported(claim: Sentence, score: float, threshold: float = SUPPORT_THRESHOLD) -> bool:
    """Whether a claim is supported by the evidence sentence that gave it `score` (0 when that
    sentence does not state it). A claim with content words or figures, all of them stated, is
    supported: a short right answer ("Duncorfen", "494 watt-hours") is far in meaning from its
    record's whole sentence, so its cosine says nothing. One with none ("Yes, it is.") needs
    the score."""
    if score <= 0.0:
        return False
    return bool(claim.terms or claim.numbers) or score >= threshold


def lexical_support(claim: Sentence, evidence: Sentence) -> float:
    """The share of the claim's content words that the evidence contains (0 without any)."""
    if not claim.terms:
        return 0.0
    return len(claim.terms & evidence.terms) / len(claim.terms)


def support_matrix(
    claims: Sequence[Sentence],
    evidence: Sequence[Sentence],
    claim_vectors: npt.NDArray[np.float32],
    evidence_vectors: npt.NDArray[np.float32],
    cosine_weight: float = COSINE_WEIGHT,
) -> npt.NDArray[np.float64]:
    """Scores in 0..1, claims x evidence: weighted cosine plus lexical support, 0 where the
    evidence sentence does not state the claim (see `states`)."""
    import numpy as np

    if not claims or not evidence:
        return np.zeros((len(claims), len(evidence)))
    cosine = np.clip(claim_vectors @ evidence_vectors.T, 0.0, 1.0).astype(np.float64)
    lexical = np.array([[lexical_support(c, e) for e in evidence] for c in claims])
    stated = np.array([[states(e, c) for e in evidence] for c in claims])
    return np.asarray((cosine_weight * cosine + (1 - cosine_weight) * lexical) * stated)


def align(
    answer: str,
    records: Sequence[SourceRecord],
    embedder: Embedder,
    *,
    threshold: float = SUPPORT_THRESHOLD,
) -> Alignment:
    """Cite, for each sentence of `answer`, the record sentence that supports it best."""
    import numpy as np

    every = sentences(answer)
    # A sentence that says the answer is not there claims nothing: it is neither cited nor
    # unsupported, and an answer of nothing else has no grounding at all.
    claims = [s for s in every if not says_it_cannot_answer(s.text)]
    if every and not claims:
        return Alignment([], [], None)
    evidence: list[Sentence] = []
    owner: list[SourceRecord] = []
    seen: set[tuple[str, str]] = set()
    for record in records:
        for sentence in sentences(record.text):
            if (record.id, sentence.text) not in seen:  # a repeated line is embedded once
                seen.add((record.id, sentence.text))
                evidence.append(sentence)
                owner.append(record)
    if not claims:
        return Alignment([], [], 0.0)
    vectors = embedder.embed([s.text for s in claims] + [s.text for s in evidence])
    scores = support_matrix(claims, evidence, vectors[: len(claims)], vectors[len(claims) :])
    citations: list[Citation] = []
    unsupported: list[tuple[int, int]] = []
    for i, claim in enumerate(claims):
        best = int(np.argmax(scores[i])) if evidence else -1
        if best >= 0 and is_supported(claim, float(scores[i, best]), threshold):
            record, quote = owner[best], evidence[best]
            citations.append(
                Citation(
                    claim.start,
                    claim.end,
                    record.id,
                    record.dataset_id,
                    record.source,
                    record.text[quote.start : quote.end],
                    round(float(scores[i, best]), 4),
                )
            )
        else:
            unsupported.append((claim.start, claim.end))
    total = sum(c.end - c.start for c in claims)
    supported = sum(c.end - c.start for c in citations)
    return Alignment(citations, unsupported, round(supported / total, 4) if total else 0.0)
