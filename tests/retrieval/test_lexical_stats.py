"""Lexical scores stay exact per-dataset BM25 as records are written, rewritten and deleted.

Each check compares the index's raw BM25 scores with a computation from scratch over the
dataset's current records (k1 1.2, b 0.75, FTS5's IDF; a record's length is its word count on
SQLite, its count of distinct words on PostgreSQL). The words are
chosen so that both databases' stemmers leave them alone and no stop word is among them, so the
scratch computation can count them in the text. On PostgreSQL the statistics are counters and
postings kept by triggers (migration 0004); they must also vanish with their dataset.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import pytest
from sqlalchemy import delete as sql_delete
from sqlalchemy import text

from openbotkit.engine import Engine
from openbotkit.retrieval.embedders import Embedder
from openbotkit.retrieval.index import BM25_B, BM25_K1
from openbotkit.retrieval.lexical import count_words
from openbotkit.services import records
from openbotkit.services.context import Ctx
from openbotkit.settings import Settings
from openbotkit.store.tables import Dataset, Record

WORDS = ["falcon", "cobalt", "quartz", "violin", "zebra", "kiwi", "mango", "lemon"]
QUERIES = ["falcon", "cobalt quartz", "violin zebra kiwi", "mango lemon falcon", "lemon"]
STATS_TABLES = ("lexical_postings", "lexical_terms", "lexical_sizes")


def sentence(i: int) -> str:
    """A deterministic text: some of WORDS (a few repeated), and filler words."""
    picked = [WORDS[(i * 3 + j) % len(WORDS)] for j in range(1 + i % 4)]
    if i % 5 == 0:
        picked.append(picked[0])  # a term frequency of 2
    return " ".join(picked + ["filler"] * (i % 7)) + "."


def scratch_bm25(texts: list[str], query: str, dialect: str) -> dict[int, float]:
    """BM25 of each text (by position) holding a query word, from the texts alone."""
    bags = [re.findall(r"[a-z]+", t.lower()) for t in texts]
    if dialect == "postgresql":
        lengths = [len(set(bag)) for bag in bags]
    else:
        lengths = [count_words(t) for t in texts]
    avg = max(sum(lengths) / len(texts), 1e-9) if texts else 1.0
    scores: dict[int, float] = {}
    for term in dict.fromkeys(query.split()):
        df = sum(1 for bag in bags if term in bag)
        if not df:
            continue
        idf = math.log((len(texts) - df + 0.5) / (df + 0.5))
        idf = idf if idf > 0 else 1e-6
        for i, bag in enumerate(bags):
            tf = bag.count(term)
            if tf:
                norm = BM25_K1 * (1 - BM25_B + BM25_B * lengths[i] / avg)
                scores[i] = scores.get(i, 0.0) + idf * tf * (BM25_K1 + 1) / (tf + norm)
    return scores


def index_scores(engine: Engine, dataset_id: str, query: str) -> dict[str, float]:
    with engine.store.session(write=False) as session:
        hits = engine.runtime.index.lexical(session, dataset_id, query, (), 1000)
    return {h.record_id: h.score for h in hits}


def assert_exact(engine: Engine, dataset_id: str) -> None:
    """Every query's scores equal the from-scratch BM25 over the dataset's records now."""
    with engine.store.session(write=False) as session:
        rows = session.execute(
            text("SELECT id, text FROM records WHERE dataset_id = :d ORDER BY key"),
            {"d": dataset_id},
        ).all()
    ids = [str(r[0]) for r in rows]
    texts = [str(r[1]) for r in rows]
    for query in QUERIES:
        scratch = scratch_bm25(texts, query, engine.store.dialect)
        expected = {ids[i]: s for i, s in scratch.items()}
        found = index_scores(engine, dataset_id, query)
        assert found.keys() == expected.keys(), query
        for rid, score in expected.items():
            assert found[rid] == pytest.approx(score, rel=1e-9), (query, rid)


@pytest.fixture
def lexicon(engine: Engine) -> tuple[Engine, str]:
    """The engine and the account id of "alice", who owns the datasets here."""
    return engine, engine.ensure_account("alice")


def new_dataset(engine: Engine, account: str) -> str:
    return str(engine.execute("create_dataset", {}, account="alice")["id"])


def run(engine: Engine, action: str, data: dict[str, Any]) -> None:
    engine.execute(action, data, account="alice")


def add(engine: Engine, account: str, dataset_id: str, texts: list[str]) -> list[str]:
    with engine.store.session() as session:
        ctx = Ctx(engine.runtime, session, account)
        ds = session.get(Dataset, dataset_id)
        assert ds is not None
        vectors = engine.runtime.embedder.embed(texts)
        rows = records.create_many(ctx, ds, [{"text": t} for t in texts], vectors)
        return [r.id for r in rows]


def stats_rows(engine: Engine, dataset_id: str) -> dict[str, int]:
    with engine.store.session(write=False) as session:
        return {
            table: int(
                session.scalar(
                    text(f"SELECT count(*) FROM {table} WHERE dataset_id = :d"),
                    {"d": dataset_id},
                )
                or 0
            )
            for table in STATS_TABLES
        }


def test_inserts_updates_and_deletes_keep_scores_exact(lexicon: tuple[Engine, str]) -> None:
    engine, account = lexicon
    ds = new_dataset(engine, account)
    ids = add(engine, account, ds, [sentence(i) for i in range(40)])
    assert_exact(engine, ds)
    # More records in later statements and transactions.
    ids += add(engine, account, ds, [sentence(i) for i in range(40, 55)])
    assert_exact(engine, ds)
    # Rewritten texts (words, term frequencies and lengths change), and a meta-only update.
    update = "update_dataset_record"
    run(engine, update, {"datasetId": ds, "recordId": ids[3], "text": "zebra zebra."})
    run(engine, update, {"datasetId": ds, "recordId": ids[7], "text": sentence(99)})
    run(engine, update, {"datasetId": ds, "recordId": ids[8], "meta": {"k": 1}})
    assert_exact(engine, ds)
    # Deleted one by one, and several in one statement.
    for rid in ids[10:14]:
        run(engine, "delete_dataset_record", {"datasetId": ds, "recordId": rid})
    with engine.store.session() as session:
        session.execute(sql_delete(Record).where(Record.id.in_(ids[20:30])))
    assert_exact(engine, ds)


def test_deleting_a_dataset_leaves_others_exact_and_no_statistics_behind(
    lexicon: tuple[Engine, str], db_backend: str
) -> None:
    engine, account = lexicon
    kept, dropped = new_dataset(engine, account), new_dataset(engine, account)
    add(engine, account, kept, [sentence(i) for i in range(30)])
    add(engine, account, dropped, [sentence(i) for i in range(10, 60)])
    before = {q: index_scores(engine, kept, q) for q in QUERIES}
    if db_backend == "postgresql":
        assert all(stats_rows(engine, dropped).values())
    run(engine, "delete_dataset", {"datasetId": dropped})
    assert {q: index_scores(engine, kept, q) for q in QUERIES} == before
    assert_exact(engine, kept)
    assert all(not index_scores(engine, dropped, q) for q in QUERIES)
    if db_backend == "postgresql":
        assert stats_rows(engine, dropped) == dict.fromkeys(STATS_TABLES, 0)


def test_two_concurrent_writers_keep_scores_exact(lexicon: tuple[Engine, str]) -> None:
    """Two threads (two connections) insert and delete in one dataset at the same time."""
    engine, account = lexicon
    ds = new_dataset(engine, account)
    add(engine, account, ds, [sentence(i) for i in range(5)])
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for round_ in range(6):
                texts = [sentence(offset + round_ * 7 + i) for i in range(6)]
                ids = add(engine, account, ds, texts)
                run(engine, "delete_dataset_record", {"datasetId": ds, "recordId": ids[0]})
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k * 100,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert_exact(engine, ds)


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_open_transactions_writing_one_dataset_never_wait_on_each_other(
    lexicon: tuple[Engine, str],
) -> None:
    """PostgreSQL lets two transactions write one dataset at once (SQLite has one writer).

    Each writes the words the other wrote before: counters updated in place would make the
    second wait on the first and then deadlock; here each transaction has its own counter slot.
    Both commit, without waiting, and the statistics are those of all records.
    """
    engine, account = lexicon
    ds = new_dataset(engine, account)
    first, second = ["falcon cobalt.", "quartz violin."], ["quartz violin.", "falcon cobalt."]
    with engine.store.session() as a, engine.store.session() as b:
        for session in (a, b):
            session.execute(text("SET LOCAL lock_timeout = '5s'"))
        ctx_a, ctx_b = Ctx(engine.runtime, a, account), Ctx(engine.runtime, b, account)
        ds_a, ds_b = a.get(Dataset, ds), b.get(Dataset, ds)
        assert ds_a is not None and ds_b is not None
        vec = engine.runtime.embedder.embed(["x"])

        def put(ctx: Ctx, dataset: Dataset, words: str) -> Any:
            return records.create_many(ctx, dataset, [{"text": words}], vec)

        put(ctx_a, ds_a, first[0])
        put(ctx_b, ds_b, second[0])
        put(ctx_a, ds_a, first[1])  # would wait on b's counter rows
        put(ctx_b, ds_b, second[1])  # ... while b waits on a's: a deadlock
        slots = {
            session.scalar(
                text("SELECT max(slot) FROM lexical_sizes WHERE dataset_id = :d"), {"d": ds}
            )
            for session in (a, b)
        }
        assert slots == {0, 1}
    assert_exact(engine, ds)
    # Later transactions reuse the free slots rather than adding more.
    add(engine, account, ds, ["kiwi mango."])
    with engine.store.session(write=False) as session:
        used = session.scalar(
            text("SELECT count(DISTINCT slot) FROM lexical_sizes WHERE dataset_id = :d"),
            {"d": ds},
        )
    assert used == 2
    assert_exact(engine, ds)


@pytest.mark.parametrize("db_backend", ["postgresql"])
def test_upgrading_a_database_with_records_counts_them(lexicon: tuple[Engine, str]) -> None:
    """Records stored before the statistics existed are counted by the migration itself."""
    from alembic import command
    from alembic.config import Config

    from openbotkit.store.db import MIGRATIONS_DIR

    engine, account = lexicon
    ds = new_dataset(engine, account)
    add(engine, account, ds, [sentence(i) for i in range(20)])
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.store.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
        conn.commit()
    add(engine, account, ds, [sentence(i) for i in range(20, 35)])  # no statistics kept
    with engine.store.write_engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
    assert_exact(engine, ds)


def test_searches_after_writes_elsewhere_see_them(
    lexicon: tuple[Engine, str], settings: Settings, local_embedder: Embedder
) -> None:
    """A process keeps what it read of a word's postings per committed index version: another
    process's writes (another engine on the same database) and this transaction's own
    uncommitted ones are seen at once, scores exact."""
    engine, account = lexicon
    ds = new_dataset(engine, account)
    add(engine, account, ds, [sentence(i) for i in range(20)])
    assert_exact(engine, ds)  # read, and kept, at this version
    other = Engine(settings, embedder=local_embedder)
    try:
        add(other, account, ds, ["falcon falcon cobalt.", "lemon."])
        with other.store.session() as session:
            session.execute(sql_delete(Record).where(Record.text == sentence(3)))
            other.runtime.index.touch(session, ds)
    finally:
        other.close()
    assert_exact(engine, ds)

    class Abandon(Exception):
        pass

    with pytest.raises(Abandon), engine.store.session() as session:
        ctx = Ctx(engine.runtime, session, account)
        dataset = session.get(Dataset, ds)
        assert dataset is not None
        texts = ["falcon kiwi kiwi."]
        vectors = local_embedder.embed(texts)
        (row,) = records.create_many(ctx, dataset, [{"text": t} for t in texts], vectors)
        seen = engine.runtime.index.lexical(session, ds, "kiwi", (), 1000)
        assert row.id in {h.record_id for h in seen}  # this transaction's own write
        raise Abandon  # rolled back: nothing of it stays in the shared cache
    assert_exact(engine, ds)
