"""Ingestion throughput through the real job path, next to a bare sentence-transformers loop.

    .venv/bin/python bench/ingest.py [BEIR_DIR] [--docs 1000] [--per-file 100]
        [--database-url postgresql://USER@HOST:PORT/DB [--workers 2]]

Writes the collection's documents as Markdown files (one heading per document), uploads them,
attaches them to a dataset, syncs them and runs the worker: parse, chunk, embed, index, all in
the real code. Then encodes the very same chunk texts with a bare SentenceTransformer.encode
loop, and with the platform's own embedder called directly, and prints chunks/s and ratios.
With --database-url, the same ingestion runs again on that database (an empty one) with
--workers workers claiming the jobs, and its chunks/s is printed beside SQLite's (one worker).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import func, select

from openbotkit.engine import Engine
from openbotkit.retrieval.embedders import Embedder, LocalEmbedder
from openbotkit.services.worker import Worker
from openbotkit.settings import Settings
from openbotkit.store.tables import Record


def ingest(
    engine: Engine, docs: list[dict[str, str]], per_file: int, tmp: Path, workers: int
) -> tuple[float, list[str], list[list[dict[str, str]]]]:
    """Upload the documents as Markdown files into a new dataset, sync them and run `workers`
    workers (threads, each its own Worker, as several `obk worker` processes would claim jobs)
    until no job is left: the seconds that took, the file ids, the documents of each file."""
    ds = engine.execute("create_dataset", {"name": "bench"})["id"]
    file_ids, parts = [], []
    for start in range(0, len(docs), per_file):
        part = docs[start : start + per_file]
        text = "\n\n".join(f"# Document {d['_id']}\n\n{d['text']}" for d in part)
        path = tmp / f"part-{start}.md"
        path.write_text(text)
        file_id = engine.execute("create_file", {"name": path.name})["id"]
        engine.execute("upload_file", {"fileId": file_id, "path": str(path)})
        engine.execute(
            "attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"}
        )
        file_ids.append(file_id)
        parts.append(part)
    for file_id in file_ids:
        engine.execute("sync_file", {"fileId": file_id})

    def drain() -> None:
        worker = Worker(engine.runtime)
        while worker.run_once() is not None:
            pass

    started = time.perf_counter()
    threads = [threading.Thread(target=drain) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, file_ids, parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("beir_dir", type=Path, help="a collection in BEIR layout (SciFact)")
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--per-file", type=int, default=100)
    parser.add_argument(
        "--database-url", help="also ingest into this (empty) database, e.g. PostgreSQL"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers on --database-url")
    args = parser.parse_args()
    docs = [json.loads(line) for line in (args.beir_dir / "corpus.jsonl").open()][: args.docs]
    pristine = [dict(d) for d in docs]  # the re-sync below edits `docs`
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(Settings(home=Path(tmp) / "home", sync_min_interval_s=0), local_paths=True)
        embedder = engine.runtime.embedder
        platform_s, file_ids, parts = ingest(engine, docs, args.per_file, Path(tmp), 1)
        with engine.store.session(write=False) as session:
            chunks = list(session.scalars(select(Record.text)))
        # Baseline 1, as asked: a bare sentence-transformers (PyTorch fp32) encode loop.
        bare = LocalEmbedder().model
        started = time.perf_counter()
        for i in range(0, len(chunks), 64):
            bare.encode(chunks[i : i + 64], batch_size=32, normalize_embeddings=True)
        bare_s = time.perf_counter() - started
        # Baseline 2: the embedder the platform uses (int8 ONNX), called directly.
        started = time.perf_counter()
        embedder.embed(chunks)
        direct_s = time.perf_counter() - started
        print(f"{len(docs)} documents in {len(file_ids)} Markdown files -> {len(chunks)} chunks")
        print(f"{'':<34} {'seconds':>8} {'chunks/s':>9}")
        print(
            f"{'openbotkit sync jobs (all stages)':<34} {platform_s:>8.1f} {len(chunks) / platform_s:>9.1f}"
        )
        print(
            f"{'bare SentenceTransformer.encode':<34} {bare_s:>8.1f} {len(chunks) / bare_s:>9.1f}"
        )
        print(
            f"{'the same embedder, called directly':<34} {direct_s:>8.1f} {len(chunks) / direct_s:>9.1f}"
        )
        print(f"platform / bare sentence-transformers throughput: {bare_s / platform_s:.2f}")
        print(f"platform / its own embedder alone: {direct_s / platform_s:.2f}")
        resync_figures(engine, Path(tmp), file_ids, parts, platform_s)
        engine.close()
        if args.database_url:
            other_database(args, pristine, Path(tmp), embedder, len(chunks), platform_s)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def other_database(
    args: argparse.Namespace,
    docs: list[dict[str, str]],
    tmp: Path,
    embedder: Embedder,
    sqlite_chunks: int,
    sqlite_s: float,
) -> None:
    """The same ingestion into --database-url with --workers workers, beside SQLite's figure."""
    folder = tmp / "other"
    folder.mkdir()
    engine = Engine(
        Settings(home=folder / "home", database_url=args.database_url, sync_min_interval_s=0),
        embedder=embedder,
        local_paths=True,
    )
    try:
        took, _, _ = ingest(engine, docs, args.per_file, folder, args.workers)
        with engine.store.session(write=False) as session:
            chunks = session.scalar(select(func.count()).select_from(Record)) or 0
        backend = engine.store.dialect
    finally:
        engine.close()
    print(f"{'ingestion, chunks/s':<40} {'workers':>8} {'chunks':>7} {'chunks/s':>9}")
    print(f"{'sqlite':<40} {1:>8} {sqlite_chunks:>7} {sqlite_chunks / sqlite_s:>9.1f}")
    print(f"{backend:<40} {args.workers:>8} {chunks:>7} {chunks / took:>9.1f}")
    print(
        f"{backend} ({args.workers} workers) / sqlite: {(chunks / took) / (sqlite_chunks / sqlite_s):.2f}x"
    )


def resync_figures(
    engine: Engine,
    tmp: Path,
    file_ids: list[str],
    parts: list[list[dict[str, str]]],
    full_s: float,
) -> None:
    """Re-sync the same files: unchanged, then with one document of each file edited."""

    def sync_all() -> tuple[float, int, int]:
        job_ids = [engine.execute("sync_file", {"fileId": f})["jobs"][0]["id"] for f in file_ids]
        worker = Worker(engine.runtime)
        started = time.perf_counter()
        while worker.run_once() is not None:
            pass
        took = time.perf_counter() - started
        jobs = [engine.execute("fetch_job", {"jobId": j}) for j in job_ids]
        return took, sum(j["stats"]["added"] for j in jobs), sum(j["stats"]["kept"] for j in jobs)

    same_s, _, kept = sync_all()
    for file_id, part in zip(file_ids, parts, strict=True):
        part[len(part) // 2]["text"] += " This sentence was added in a revision."
        text = "\n\n".join(f"# Document {d['_id']}\n\n{d['text']}" for d in part)
        path = tmp / f"{file_id}.md"
        path.write_text(text)
        engine.execute("upload_file", {"fileId": file_id, "path": str(path)})
    edit_s, added, kept_after = sync_all()
    print("re-sync (change-aware)                    seconds  embedded  kept")
    print(f"{'first sync (above)':<40} {full_s:>8.2f}")
    print(f"{'unchanged files':<40} {same_s:>8.2f} {0:>9} {kept:>5}")
    print(f"{'one document edited per file':<40} {edit_s:>8.2f} {added:>9} {kept_after:>5}")


if __name__ == "__main__":
    sys.exit(main())
