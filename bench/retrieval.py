"""Retrieval quality and speed, measured through the real engine.

    .venv/bin/python bench/retrieval.py [BEIR_DIR] [--latency-sizes 10000,100000]
        [--database-url postgresql://USER@HOST:PORT/DB] [--million]

Quality: indexes a BEIR-layout collection (SciFact, in BEIR layout) as one
dataset through the services (embedding, vectors, FTS5), runs every query in lexical, dense and
hybrid mode, and prints nDCG@10 and recall@10 next to the reference figures, with a paired
bootstrap 95% interval for hybrid minus each single mode; also reciprocal rank fusion (k = 60)
of the same two candidate lists, the method of the reference row, for comparison.

Speed: datasets of N records of real text (realcorpus.py: sentences, windows and variants of the
collection's abstracts, embedded once and cached), search latency
p50/p99 with and without the query embedding, next to a bare numpy matrix-product k-NN over
the same vectors in the same run, the index's recall@10 against exact search, and the first
search after another process (a second Engine) wrote one record: the cache refresh.

--database-url runs both on that database (PostgreSQL + pgvector: HNSW and full-text), with
SQLite's quality row printed beside it; the database should be empty (each run adds datasets).
--million measures search at 1,000,000 records (instead of --latency-sizes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import text

from openbotkit.engine import Engine
from openbotkit.retrieval.evaluation import (
    ndcg,
    ranks_of,
    read_corpus,
    read_qrels,
    read_queries,
    recall,
)
from openbotkit.retrieval.fusion import fuse_rrf
from openbotkit.services import records
from openbotkit.services.search import MIN_CANDIDATES, search_records
from openbotkit.settings import Settings
from openbotkit.store.tables import Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
import realcorpus  # type: ignore[import-not-found]  # a sibling of this script
from serving import free_port, new_secret, wait_ready  # type: ignore[import-not-found]

REFERENCE = {"lexical": (0.829, 0.927), "dense": (0.823, 0.919), "hybrid": (0.838, 0.955)}
MODES = ("lexical", "dense", "hybrid")
ROWS = (*MODES, "rrf")
DATASET_ID = "bench-beir"
REAL_MAX = 100_000  # distinct texts built from the collection; past it, moved copies


def load_beir(root: Path) -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """Corpus, the queries that have judgements, and the judgements (grade > 0)."""
    corpus = read_corpus(root / "corpus.jsonl")
    qrels = {
        q: {d: g for d, g in docs.items() if g > 0}
        for q, docs in read_qrels(root / "qrels" / "test.tsv").items()
    }
    qrels = {q: docs for q, docs in qrels.items() if docs}
    queries = read_queries(root / "queries.jsonl")
    return corpus, {q: t for q, t in queries.items() if q in qrels}, qrels


def figures_at_10(ranked: list[str], rels: dict[str, int]) -> tuple[float, float]:
    """nDCG@10 and recall@10 of a ranking of document ids (the library's, as the action uses)."""
    ranks = ranks_of(ranked, list(rels))
    return ndcg(ranks, 10, list(rels.values())), recall(ranks, 10)


def bootstrap(diffs: list[float], rounds: int = 2000, seed: int = 7) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    arr = np.array(diffs)
    means = arr[rng.integers(0, len(arr), (rounds, len(arr)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def p(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q))


def make_dataset(engine: Engine, account: str, name: str) -> tuple[Any, str]:
    from openbotkit.services.context import Ctx

    account_id = engine.ensure_account(account)
    with engine.store.session() as session:
        ds = Dataset(id=f"bench-{name}", account_id=account_id, name=name, index_version=0)
        session.add(ds)
    return Ctx, account_id


Scores = dict[str, dict[str, tuple[float, float]]]


def index_corpus(engine: Engine, corpus: dict[str, str], account: str) -> dict[str, str]:
    """Store the corpus as the dataset `bench-beir` of `account`, each record with its
    document id in meta `docId` (what `obk datasets eval` matches on); record id -> doc id."""
    ctx_cls, account_id = make_dataset(engine, account, "beir")
    doc_ids = list(corpus)
    by_record: dict[str, str] = {}
    batch = 64
    for start in range(0, len(doc_ids), batch):
        ids = doc_ids[start : start + batch]
        texts = [corpus[d] for d in ids]
        with engine.store.session(write=False) as session:
            vectors = records.embed_texts(ctx_cls(engine.runtime, session, account_id), texts)
        with engine.store.session() as session:
            ctx = ctx_cls(engine.runtime, session, account_id)
            ds = session.get(Dataset, DATASET_ID)
            assert ds is not None
            items = [{"text": t, "meta": {"docId": d}} for t, d in zip(texts, ids, strict=True)]
            rows = records.create_many(ctx, ds, items, vectors)
            by_record.update({r.id: d for r, d in zip(rows, ids, strict=True)})
    return by_record


def score_queries(
    engine: Engine,
    account: str,
    by_record: dict[str, str],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
) -> dict[str, dict[str, tuple[float, float]]]:
    """Per ranking (the three modes and RRF), per query: nDCG@10 and recall@10."""
    from openbotkit.services.context import Ctx

    account_id = engine.ensure_account(account)
    per_mode: dict[str, dict[str, tuple[float, float]]] = {m: {} for m in ROWS}
    with engine.store.session(write=False) as session:
        ctx = Ctx(engine.runtime, session, account_id)
        dataset = session.get(Dataset, DATASET_ID)
        assert dataset is not None
        for qid, text in queries.items():
            rankings: dict[str, list[str]] = {}
            for mode in MODES:
                # Single modes give their fusion candidates; hybrid is measured as used (k = 10).
                k = 10 if mode == "hybrid" else MIN_CANDIDATES
                found = search_records(ctx, dataset, text, mode=mode, max_records=k)
                rankings[mode] = [by_record[r.id] for r in found]
            rankings["rrf"] = [d for d, _ in fuse_rrf([rankings["dense"], rankings["lexical"]])]
            for row in ROWS:
                per_mode[row][qid] = figures_at_10(rankings[row][:10], qrels[qid])
    return per_mode


def quality(engine: Engine, root: Path) -> Scores:
    corpus, queries, qrels = load_beir(root)
    started = time.perf_counter()
    by_record = index_corpus(engine, corpus, "bench")
    took = time.perf_counter() - started
    print(f"indexed {len(corpus)} documents in {took:.1f} s ({len(corpus) / took:.1f} docs/s)")
    per_mode = score_queries(engine, "bench", by_record, queries, qrels)
    print(f"\n{len(queries)} queries, {len(corpus)} documents ({root})")
    return per_mode


def report(per_mode: Scores, beside: Scores | None, backend: str) -> None:
    """The quality table; with `beside`, SQLite's figures next to this backend's."""
    extra = f" {'SQLite':>7} {'R@10':>6}" if beside else ""
    print(
        f"{backend}: {'mode':<8} {'nDCG@10':>8} {'ref':>6} {'diff':>7}   {'R@10':>6} {'ref':>6}{extra}"
    )
    for mode in ROWS:
        nd = statistics.mean(v[0] for v in per_mode[mode].values())
        rc = statistics.mean(v[1] for v in per_mode[mode].values())
        ref_nd, ref_rc = REFERENCE["hybrid" if mode == "rrf" else mode]
        side = ""
        if beside:
            side = (
                f" {statistics.mean(v[0] for v in beside[mode].values()):>7.3f}"
                f" {statistics.mean(v[1] for v in beside[mode].values()):>6.3f}"
            )
        print(
            f"{backend}: {mode:<8} {nd:>8.3f} {ref_nd:>6.3f} {nd - ref_nd:>+7.3f}   {rc:>6.3f} {ref_rc:>6.3f}{side}"
        )
    queries = list(per_mode["hybrid"])
    for other in ("lexical", "dense", "rrf"):
        diffs = [per_mode["hybrid"][q][0] - per_mode[other][q][0] for q in queries]
        lo, hi = bootstrap(diffs)
        print(
            f"hybrid - {other:<7} nDCG@10 {statistics.mean(diffs):+.3f}  95% CI [{lo:+.3f}, {hi:+.3f}]"
        )


class RealCorpus:
    """Texts and their cached embeddings (see realcorpus.py), the queries likewise."""

    def __init__(self, engine: Engine, root: Path, size: int) -> None:
        embedder = engine.runtime.embedder
        cache = engine.settings.resolved_cache_dir / "bench"
        real = min(size, REAL_MAX)
        self.texts, self.queries = realcorpus.build_texts(root, real)
        print(f"\nembedding {real} texts of {root.name} (cached in {cache})", flush=True)
        self.vectors = realcorpus.embedded(embedder, self.texts, cache, "corpus")
        self.query_vectors = realcorpus.embedded(embedder, self.queries, cache, "queries")

    def sample(self, size: int, seed: int) -> tuple[list[str], Any]:
        """`size` texts with their vectors: a random subset of the real corpus, or past its
        size, every text repeated with its vector moved a little (cosine ~0.97 to it)."""
        rng = np.random.default_rng(seed)
        n = len(self.texts)
        if size <= n:
            order = rng.permutation(n)[:size]
            return [self.texts[i] for i in order], self.vectors[order]
        order = np.arange(size) % n
        vectors = self.vectors[order].copy()
        for start in range(n, size, 50_000):
            part = vectors[start : start + 50_000]
            part += rng.standard_normal(part.shape, dtype=np.float32) * 0.012
            part /= np.linalg.norm(part, axis=1, keepdims=True)
        return [self.texts[i] for i in order], vectors


def latency(engine: Engine, size: int, corpus: RealCorpus) -> str:
    ctx_cls, account_id = make_dataset(engine, "bench", f"real-{size}")
    dataset_id = f"bench-real-{size}"
    embedder = engine.runtime.embedder
    texts, vectors = corpus.sample(size, seed=size)
    started = time.perf_counter()
    written_ids: list[str] = []
    batch = 5000
    for start in range(0, size, batch):
        items = [{"text": t} for t in texts[start : start + batch]]
        with engine.store.session() as session:
            ds = session.get(Dataset, dataset_id)
            assert ds is not None
            rows = records.create_many(
                ctx_cls(engine.runtime, session, account_id),
                ds,
                items,
                vectors[start : start + batch],
            )
        written_ids.extend(r.id for r in rows)
        if start and start % 100_000 == 0:
            print(f"  {start} records written ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"\n{size} records written in {time.perf_counter() - started:.1f} s")
    if engine.store.dialect == "postgresql":
        with engine.store.session() as session:  # fresh planner statistics, as autovacuum would
            session.execute(text("ANALYZE records"))
            session.execute(text("ANALYZE record_vectors"))
        # ... and the visibility map the lexical postings' index-only scans rely on.
        with engine.store.write_engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM (ANALYZE) lexical_postings, lexical_terms, lexical_sizes")
            )

    queries = corpus.queries
    qvecs = corpus.query_vectors
    index = engine.runtime.index
    with engine.store.session(write=False) as session:
        ctx = ctx_cls(engine.runtime, session, account_id)
        ds = session.get(Dataset, dataset_id)
        assert ds is not None
        search_records(ctx, ds, queries[0], mode="dense")  # load the vectors once

        def timed(fn: Any, items: list[Any]) -> list[float]:
            out = []
            for item in items:
                t = time.perf_counter()
                fn(item)
                out.append((time.perf_counter() - t) * 1000)
            return out

        embed_only = timed(lambda q: embedder.embed([q]), queries)
        with_embed = timed(lambda q: search_records(ctx, ds, q, mode="dense"), queries)
        # Lexical first as each query's words are first read (SQLite keeps a word's postings
        # per index version), then hybrid and lexical again with them kept, as a serving
        # process that has seen the words before.
        lexical_cold = timed(lambda q: search_records(ctx, ds, q, mode="lexical"), queries)
        hybrid = timed(lambda q: search_records(ctx, ds, q, mode="hybrid"), queries)
        lexical = timed(lambda q: search_records(ctx, ds, q, mode="lexical"), queries)
        index_only = timed(
            lambda v: index.dense(session, ds, v, embedder.model_id, 10, ()), list(qvecs)
        )

        def bare(v: Any, k: int = 10) -> Any:
            scores = vectors @ v
            top = np.argpartition(-scores, k - 1)[:k]
            return top[np.argsort(-scores[top])]

        baseline = timed(bare, list(qvecs))
        position = {rid: i for i, rid in enumerate(written_ids)}
        recalls = {}
        for k in (10, 50):
            hits = 0
            for v in qvecs:
                exact = set(bare(v, k).tolist())
                found = index.dense(session, ds, v, embedder.model_id, k, ())
                hits += len(exact & {position[h.record_id] for h in found[:k]})
            recalls[k] = hits / (k * len(qvecs))
    print(f"{'search at ' + str(size):<34} {'p50 ms':>8} {'p99 ms':>8}   load {load()}")
    print(f"{'query embedding alone':<34} {p(embed_only, 50):>8.2f} {p(embed_only, 99):>8.2f}")
    print(
        f"{'dense, query embedding included':<34} {p(with_embed, 50):>8.2f} {p(with_embed, 99):>8.2f}"
    )
    print(f"{'hybrid, query embedding included':<34} {p(hybrid, 50):>8.2f} {p(hybrid, 99):>8.2f}")
    lexical_name = "full-text" if engine.store.dialect == "postgresql" else "FTS5 BM25"
    cold_name = f"lexical ({lexical_name}), words new"
    print(f"{cold_name:<34} {p(lexical_cold, 50):>8.2f} {p(lexical_cold, 99):>8.2f}")
    print(f"{'lexical (' + lexical_name + ')':<34} {p(lexical, 50):>8.2f} {p(lexical, 99):>8.2f}")
    print(
        f"{'dense index only (no embedding)':<34} {p(index_only, 50):>8.2f} {p(index_only, 99):>8.2f}"
    )
    print(f"{'bare numpy matmul k-NN':<34} {p(baseline, 50):>8.2f} {p(baseline, 99):>8.2f}")
    print(
        f"index / bare numpy (p50): {p(index_only, 50) / p(baseline, 50):.2f}x;"
        f" index recall vs exact: @10 {recalls[10]:.3f}, @50 {recalls[50]:.3f}"
        f" ({len(qvecs)} queries)"
    )
    if engine.store.dialect == "sqlite":  # no cache to refresh on PostgreSQL
        refresh_after_foreign_write(engine, account_id, dataset_id, queries)
    else:
        sweep_ef_search(engine, dataset_id, vectors, written_ids, qvecs)
    return dataset_id


def sweep_ef_search(
    engine: Engine, dataset_id: str, vectors: Any, written_ids: list[str], qvecs: Any
) -> None:
    """HNSW recall@10 against exact search and index-only latency per `hnsw.ef_search`."""
    index: Any = engine.runtime.index
    model = engine.runtime.embedder.model_id
    chosen = index.ef_search
    position = {rid: i for i, rid in enumerate(written_ids)}
    exact = []
    for v in qvecs:
        scores = vectors @ v
        exact.append(set(np.argpartition(-scores, 9)[:10].tolist()))
    print(f"{'hnsw.ef_search':<16} {'recall@10':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for ef in (40, 64, 100, 200, 400):
        index.ef_search = ef
        took, hits = [], 0
        with engine.store.session(write=False) as session:
            ds = session.get(Dataset, dataset_id)
            for v, want in zip(qvecs, exact, strict=True):
                t = time.perf_counter()
                found = index.dense(session, ds, v, model, 10, ())
                took.append((time.perf_counter() - t) * 1000)
                hits += len(want & {position[h.record_id] for h in found})
        mark = "  (the default)" if ef == chosen else ""
        print(
            f"{ef:<16} {hits / (10 * len(qvecs)):>9.3f} {p(took, 50):>8.2f} {p(took, 99):>8.2f}{mark}"
        )
    index.ef_search = chosen


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def refresh_after_foreign_write(
    engine: Engine, account_id: str, dataset_id: str, queries: list[str]
) -> None:
    """Time the first search after another process (here: a second Engine) adds a record."""
    from openbotkit.services.context import Ctx

    other = Engine(engine.settings, embedder=engine.runtime.embedder)
    took = []
    for q in queries[:10]:
        with other.store.session() as session:
            records.create(Ctx(other.runtime, session, account_id), dataset_id, {"text": q})
        with engine.store.session(write=False) as session:
            dataset = session.get(Dataset, dataset_id)
            assert dataset is not None
            t = time.perf_counter()
            search_records(Ctx(engine.runtime, session, account_id), dataset, q, mode="dense")
            took.append((time.perf_counter() - t) * 1000)
    other.close()
    print(
        f"{'first dense search after a write':<34} {p(took, 50):>8.2f} {max(took):>8.2f}"
        "  (p50, max; reloads that record)"
    )


def serve_memory(home: Path, searched: tuple[int, str], queries: list[str], embedder: Any) -> None:
    """`obk serve`'s resident size: idle, after searching a 100-record dataset (models and code
    paths loaded), and after searching the largest dataset (its vectors cached)."""
    import subprocess

    import httpx

    size, dataset_id = searched
    binary = Path(sys.executable).parent / "obk"
    env = {**os.environ, "OBK_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    token = new_secret(env, "bench")
    engine = Engine(Settings(home=home), embedder=embedder)
    _, account_id = make_dataset(engine, "bench", "small")
    from openbotkit.services.context import Ctx

    with engine.store.session() as session:
        items = [{"text": q} for q in queries[:100]]
        ds = session.get(Dataset, "bench-small")
        assert ds is not None
        records.create_many(Ctx(engine.runtime, session, account_id), ds, items, None)
    engine.close()
    port = free_port()
    proc = subprocess.Popen(
        [binary, "serve", "--port", str(port), "--log-level", "warning", "--no-worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    origin = f"http://127.0.0.1:{port}/api/v1"
    headers = {"Authorization": f"Bearer {token}"}

    def rss() -> float:
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    def search(dataset: str, q: str) -> None:
        answer = httpx.post(
            f"{origin}/dataset/{dataset}/search", json={"search": q}, headers=headers, timeout=60
        )
        answer.raise_for_status()

    try:
        wait_ready(f"{origin}/openapi.json", proc, 60)
        time.sleep(1)
        idle = rss()
        for q in queries[:5]:
            search("bench-small", q)
        warm = rss()
        for q in queries[:20]:
            search(dataset_id, q)
        loaded = rss()
    finally:
        proc.terminate()
        proc.wait(10)
    raw = size * embedder.dimensions * 4 / 2**20
    print(
        f"\nobk serve resident size (MiB): idle {idle:.0f}, after a small search {warm:.0f},"
        f" after searching {size} records {loaded:.0f}   load {load()}"
    )
    print(
        f"vector cache (resident growth) {loaded - warm:.0f} MiB for {raw:.0f} MiB of raw"
        f" float32 vectors: {(loaded - warm) / raw:.2f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beir_dir", type=Path, help="a collection in BEIR layout (SciFact)")
    parser.add_argument("--latency-sizes", default="10000,100000")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument(
        "--database-url", help="run on this database (e.g. PostgreSQL), SQLite's quality beside"
    )
    parser.add_argument("--million", action="store_true", help="search at 1,000,000 records")
    args = parser.parse_args()
    sizes = [1_000_000] if args.million else [int(s) for s in args.latency_sizes.split(",") if s]
    with tempfile.TemporaryDirectory() as home:
        engine = Engine(Settings(home=Path(home), database_url=args.database_url))
        backend = engine.store.dialect
        if not args.skip_quality:
            scores = quality(engine, args.beir_dir)
            beside = None
            if args.database_url:
                sqlite = Engine(
                    Settings(home=Path(home) / "sqlite"), embedder=engine.runtime.embedder
                )
                beside = quality(sqlite, args.beir_dir)
                sqlite.close()
            report(scores, beside, backend)
        corpus = RealCorpus(engine, args.beir_dir, max(sizes))
        searched = [(size, latency(engine, size, corpus)) for size in sizes]
        if backend == "sqlite":
            index = engine.runtime.index
            cached = getattr(index, "cached_bytes", lambda: 0)()
            print(f"this process's vector cache: {cached / 1e6:.1f} MB allocated")
            engine.close()
            serve_memory(Path(home), searched[-1], corpus.queries, engine.runtime.embedder)
        else:
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
