"""Two syncs of one file into one dataset whose final transactions overlap (a re-sync queued
while the first still runs, taken by another worker) write one after the other: the second
plans against the first's records, so every chunk has one record, never two."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from openbotkit.engine import Engine
from openbotkit.ingestion.diff import Wanted
from openbotkit.retrieval.embedders import Embedder
from openbotkit.services import resync
from openbotkit.services.context import AccountScope
from openbotkit.settings import Settings
from openbotkit.store.tables import Dataset, Record

pytestmark = pytest.mark.slow

TEXTS = ["The pump runs at 40 litres a minute.", "Its filter is changed every spring."]


@pytest.fixture
def engine(settings: Settings, local_embedder: Embedder) -> Iterator[Engine]:
    eng = Engine(settings, embedder=local_embedder, local_paths=True)
    yield eng
    eng.close()


def test_overlapping_final_transactions_make_each_record_once(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pump.txt"
    path.write_text("\n\n".join(TEXTS))
    file_id = engine.execute("create_file", {"name": "pump.txt"})["id"]
    engine.execute("upload_file", {"fileId": file_id, "path": str(path)})
    ds = engine.execute("create_dataset", {})["id"]
    engine.execute("attach_dataset_file", {"datasetId": ds, "fileId": file_id, "type": "source"})
    wanted = resync.wanted_records(file_id, "pump.txt", [])
    wanted = [
        Wanted(t, {"fileId": file_id, "fileName": "pump.txt", "chunk": i})
        for i, t in enumerate(TEXTS)
    ]
    vectors = dict(zip(TEXTS, engine.runtime.embedder.embed(TEXTS), strict=True))
    scope = AccountScope(engine.runtime, engine.local_account_id())
    first_applied, second_done = threading.Event(), threading.Event()
    release = threading.Event()

    def sync(first: bool) -> None:
        with scope.transaction() as ctx:
            dataset = ctx.session.get(Dataset, ds)
            assert dataset is not None
            resync.apply(ctx, dataset, file_id, wanted, vectors)
            if first:
                first_applied.set()
                release.wait(30)  # holds its transaction open meanwhile
        if not first:
            second_done.set()

    one = threading.Thread(target=sync, args=(True,))
    two = threading.Thread(target=sync, args=(False,))
    one.start()
    try:
        assert first_applied.wait(30)
        two.start()
        # The second waits for the first's transaction instead of planning beside it.
        assert not second_done.wait(1.0)
    finally:
        release.set()
        one.join(30)
        if two.is_alive() or second_done.is_set():
            two.join(30)
    assert second_done.is_set()
    with scope.transaction(write=False) as ctx:
        texts = ctx.session.scalars(select(Record.text).where(Record.dataset_id == ds)).all()
    assert sorted(texts) == sorted(TEXTS)
