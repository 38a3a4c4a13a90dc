"""A large corpus of real text with real embeddings, built from a BEIR collection at run time.

Random unit vectors are the worst case for any approximate index (no structure to exploit) and
say little about how search behaves on what users store. This builds N texts from the
collection's abstracts: every sentence, every window of two and three consecutive sentences,
each whole abstract, and then paraphrase-like variants (words dropped, neighbours swapped) of
sentences and windows until there are N distinct texts. Queries: the collection's own claims,
then variants of sentences that are not in the corpus.

The texts are embedded once by the engine's embedder and cached (keyed by the texts and the
model) under the cache directory, so a re-run reads them back in a second. Nothing of the
collection is copied into the project.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path

import numpy as np

from openbotkit.retrieval.embedders import Embedder, Vectors
from openbotkit.retrieval.evaluation import read_corpus, read_queries

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if len(s.strip()) > 20]


def variant(text: str, rng: random.Random) -> str:
    """A paraphrase-like variant: about one word in seven dropped, a few neighbours swapped."""
    words = text.split()
    kept = [w for w in words if rng.random() > 0.15] or words[:1]
    for _ in range(max(1, len(kept) // 10)):
        if len(kept) > 2:
            i = rng.randrange(len(kept) - 1)
            kept[i], kept[i + 1] = kept[i + 1], kept[i]
    return " ".join(kept)


def build_texts(root: Path, size: int, seed: int = 11) -> tuple[list[str], list[str]]:
    """(corpus texts, query texts): `size` distinct corpus texts and 200 queries."""
    corpus = read_corpus(root / "corpus.jsonl")
    docs = [sentences(t) for t in corpus.values()]
    seen: dict[str, None] = {}

    def put(t: str) -> None:
        if len(seen) < size and t not in seen:
            seen[t] = None

    for width in (1, 2, 3):
        for sents in docs:
            for i in range(len(sents) - width + 1):
                put(" ".join(sents[i : i + width]))
    for text in corpus.values():
        put(text)
    bases = list(seen)
    rng = random.Random(seed)
    guard = 0
    while len(seen) < size and guard < size * 20:
        put(variant(rng.choice(bases), rng))
        guard += 1
    if len(seen) < size:
        raise SystemExit(f"could build only {len(seen)} distinct texts from {root}")
    queries = list(read_queries(root / "queries.jsonl").values())
    all_sentences = [s for sents in docs for s in sents]
    while len(queries) < 200:
        q = variant(rng.choice(all_sentences), rng)
        if q not in seen:
            queries.append(q)
    return list(seen), queries[:200]


def embedded(embedder: Embedder, texts: list[str], cache_dir: Path, label: str) -> Vectors:
    """The texts' vectors, from the cache when these texts were embedded by this model before."""
    digest = hashlib.sha256(embedder.model_id.encode())
    for t in texts:
        digest.update(t.encode())
        digest.update(b"\0")
    path = cache_dir / f"{label}-{len(texts)}-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        loaded: Vectors = np.load(path)
        return loaded
    cache_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    out = np.empty((len(texts), embedder.dimensions), dtype=np.float32)
    step = 2000
    for start in range(0, len(texts), step):
        out[start : start + step] = embedder.embed(texts[start : start + step])
        done = min(start + step, len(texts))
        if done < len(texts) and done % 10_000 == 0:
            took = time.perf_counter() - started
            print(f"  embedded {done}/{len(texts)} ({took:.0f} s)", flush=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, out)
    tmp.replace(path)
    return out
