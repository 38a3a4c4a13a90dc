"""openbotkit.heap: settling a long-running process's heap, pausing collections."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from openbotkit import heap
from openbotkit.runtime import Runtime
from openbotkit.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give the test process's heap back to the collector afterwards."""
    yield
    gc.unfreeze()


def test_settle_moves_what_is_alive_out_of_later_collections(unfrozen: None) -> None:
    kept = [[i] for i in range(1000)]  # containers that stay alive
    heap.settle()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_count()[0] < 100  # it collected first


def test_pauses_nest_across_threads_and_restore_the_collector() -> None:
    assert gc.isenabled()
    heap.pause()
    other = threading.Thread(target=heap.pause)
    other.start()
    other.join()
    heap.resume()
    assert not gc.isenabled()  # one pause is still open
    heap.resume()
    assert gc.isenabled()


def test_a_collector_disabled_by_its_owner_stays_disabled() -> None:
    gc.disable()
    try:
        heap.pause()
        heap.resume()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_long_lived_runtime_settles_after_each_model_it_loads(
    tmp_path: Path, unfrozen: None
) -> None:
    runtime = Runtime(Settings(home=tmp_path, cache_dir=Path(os.environ["OBK_CACHE_DIR"])))
    runtime.keep_heap_settled()
    gc.unfreeze()
    assert runtime.blobs  # a light part: no full collection for it
    assert gc.get_freeze_count() == 0
    assert runtime.embedder  # a model loaded from now on settles the heap again
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    assert runtime.embedder  # loaded once: nothing more to settle
    assert gc.get_freeze_count() == 0
    runtime.close()


def test_a_runtime_that_is_not_long_lived_leaves_the_heap_alone(tmp_path: Path) -> None:
    runtime = Runtime(Settings(home=tmp_path))
    assert runtime.blobs
    assert gc.get_freeze_count() == 0
    runtime.close()
