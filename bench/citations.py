"""Citation alignment: how well its score separates supported from unsupported sentences, the
weight and threshold chosen from that, and what the alignment costs.

    .venv/bin/python bench/citations.py [BEIR_DIR]

On a BEIR-layout claim collection (SciFact: scientific
claims and the abstracts that are their evidence), each claim is scored (retrieval/citations.py:
the best sentence of a passage) against
  - its evidence abstracts (positives),
  - a random other abstract (shuffled: unrelated text),
  - the abstract that shares the most (IDF-weighted) words with it without being evidence
    (hard negatives: on-topic text that does not support it, as a retriever's near misses are).
For each cosine weight it prints the ROC AUC against both negatives, then for the chosen weight
the true and false positive rates per threshold and the threshold of best Youden's J against
the hard negatives. Last, the latency of `align` for a three-sentence answer over three
abstracts (what a completion with searchMaxRecords = 3 pays).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from openbotkit.retrieval.citations import (
    COSINE_WEIGHT,
    SUPPORT_THRESHOLD,
    Sentence,
    SourceRecord,
    align,
    is_supported,
    sentences,
    support_matrix,
)
from openbotkit.retrieval.embedders import Vectors
from openbotkit.retrieval.evaluation import read_corpus, read_qrels, read_queries
from openbotkit.retrieval.onnx_embedder import OnnxEmbedder

WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
THRESHOLDS = tuple(round(0.30 + 0.05 * i, 2) for i in range(11))


class CachedEmbedder:
    """The bundled embedder with a cache: abstracts recur across pairs."""

    def __init__(self, inner: OnnxEmbedder) -> None:
        self.inner = inner
        self.model_id, self.dimensions, self.max_tokens = (
            inner.model_id,
            inner.dimensions,
            inner.max_tokens,
        )
        self.cache: dict[str, npt.NDArray[np.float32]] = {}

    def embed(self, texts: Sequence[str]) -> Vectors:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        for text, vector in zip(missing, self.inner.embed(missing), strict=True):
            self.cache[text] = vector
        return np.stack([self.cache[t] for t in texts])

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    def split_tokens(self, text: str, max_tokens: int) -> list[str]:
        return self.inner.split_tokens(text, max_tokens)


def best_support(
    claim: Sentence, passage: list[Sentence], embedder: CachedEmbedder, weight: float
) -> float:
    vectors = embedder.embed([claim.text] + [s.text for s in passage])
    return float(support_matrix([claim], passage, vectors[:1], vectors[1:], weight).max())


def auc(pos: list[float], neg: list[float]) -> float:
    """P(a positive scores above a negative), ties counting half."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def rate(scores: list[float], threshold: float) -> float:
    return sum(s >= threshold for s in scores) / len(scores)


def hard_negatives(
    claims: dict[str, Sentence], corpus: dict[str, list[Sentence]], qrels: dict[str, set[str]]
) -> dict[str, str]:
    """Per claim, the non-evidence abstract sharing the most IDF-weighted words with it."""
    terms = {d: frozenset().union(*(s.terms for s in ss)) for d, ss in corpus.items()}
    df = Counter(t for ts in terms.values() for t in ts)
    idf = {t: math.log(len(corpus) / n) for t, n in df.items()}
    out = {}
    for qid, claim in claims.items():
        scored = (
            (sum(idf.get(t, 0.0) for t in claim.terms & ts), d)
            for d, ts in terms.items()
            if d not in qrels[qid]
        )
        out[qid] = max(scored)[1]
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beir_dir", type=Path, help="a claim collection in BEIR layout (SciFact)")
    args = parser.parse_args()
    root: Path = args.beir_dir
    corpus_text = read_corpus(root / "corpus.jsonl")
    qrels = {
        q: {d for d, g in docs.items() if g > 0 and d in corpus_text}
        for q, docs in read_qrels(root / "qrels" / "test.tsv").items()
    }
    claims = {
        q: sentences(t)[0] for q, t in read_queries(root / "queries.jsonl").items() if qrels.get(q)
    }
    corpus = {d: sentences(t) for d, t in corpus_text.items()}
    rng = random.Random(7)
    ids = sorted(corpus)
    shuffled = {q: rng.choice([d for d in ids if d not in qrels[q]]) for q in claims}
    hard = hard_negatives(claims, corpus, qrels)

    with tempfile.TemporaryDirectory() as cache:
        embedder = CachedEmbedder(OnnxEmbedder(Path(cache)))
        started = time.perf_counter()
        figures: dict[float, tuple[list[float], list[float], list[float]]] = {}
        for weight in WEIGHTS:
            pos = [
                best_support(claims[q], corpus[d], embedder, weight)
                for q in claims
                for d in sorted(qrels[q])
            ]
            rand = [best_support(claims[q], corpus[shuffled[q]], embedder, weight) for q in claims]
            near = [best_support(claims[q], corpus[hard[q]], embedder, weight) for q in claims]
            figures[weight] = (pos, rand, near)
        took = time.perf_counter() - started
        pos, rand, near = figures[WEIGHTS[0]]
        print(
            f"{len(claims)} claims: {len(pos)} positive pairs, {len(rand)} shuffled, "
            f"{len(near)} hard negatives ({root}; scored in {took:.1f} s)"
        )
        print(f"\n{'cosine weight':<14} {'AUC shuffled':>13} {'AUC hard':>9}")
        for weight, (pos, rand, near) in figures.items():
            mark = "  <- chosen" if weight == COSINE_WEIGHT else ""
            print(f"{weight:<14} {auc(pos, rand):>13.3f} {auc(pos, near):>9.3f}{mark}")

        pos, rand, near = figures[COSINE_WEIGHT]
        print(f"\nweight {COSINE_WEIGHT}: share of pairs scoring >= threshold")
        print(f"{'threshold':<10} {'positives':>9} {'shuffled':>9} {'hard':>6} {'J hard':>7}")
        best = max(THRESHOLDS, key=lambda t: rate(pos, t) - rate(near, t))
        for t in THRESHOLDS:
            j = rate(pos, t) - rate(near, t)
            mark = "  <- best J" if t == best else ""
            mark += "  <- SUPPORT_THRESHOLD" if t == SUPPORT_THRESHOLD else ""
            print(
                f"{t:<10} {rate(pos, t):>9.3f} {rate(rand, t):>9.3f} {rate(near, t):>6.3f} {j:>7.3f}{mark}"
            )
        print(
            f"score medians: positives {statistics.median(pos):.3f}, "
            f"shuffled {statistics.median(rand):.3f}, hard {statistics.median(near):.3f}"
        )
        # What align() decides (the score is 0 where no sentence states the claim).
        pos_ok = [
            is_supported(claims[q], best_support(claims[q], corpus[d], embedder, COSINE_WEIGHT))
            for q in claims
            for d in sorted(qrels[q])
        ]
        rand_ok = [
            is_supported(
                claims[q], best_support(claims[q], corpus[shuffled[q]], embedder, COSINE_WEIGHT)
            )
            for q in claims
        ]
        near_ok = [
            is_supported(
                claims[q], best_support(claims[q], corpus[hard[q]], embedder, COSINE_WEIGHT)
            )
            for q in claims
        ]
        print(
            f"marked supported by align(): positives {sum(pos_ok) / len(pos_ok):.3f}, "
            f"shuffled {sum(rand_ok) / len(rand_ok):.3f}, hard {sum(near_ok) / len(near_ok):.3f}"
        )

        # Latency as a completion pays it: fresh sentences (no cache), three abstracts.
        plain = embedder.inner
        took_ms = []
        for q in list(claims)[:30]:
            docs = [*sorted(qrels[q]), hard[q], shuffled[q]][:3]
            records = [SourceRecord(d, "ds", None, corpus_text[d]) for d in docs]
            answer = " ".join([claims[q].text, *(s.text for s in corpus[docs[0]][:2])])
            t0 = time.perf_counter()
            align(answer, records, plain)
            took_ms.append((time.perf_counter() - t0) * 1000)
        n_sent = statistics.mean(
            sum(len(corpus[d]) for d in [*sorted(qrels[q]), hard[q], shuffled[q]][:3])
            for q in list(claims)[:30]
        )
        print(
            f"\nalign(): 3-sentence answer over 3 abstracts (~{n_sent:.0f} sentences): "
            f"p50 {np.percentile(took_ms, 50):.1f} ms, p90 {np.percentile(took_ms, 90):.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
