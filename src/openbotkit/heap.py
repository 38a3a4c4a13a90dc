"""Short garbage-collection pauses in long-running processes, and none under the write lock.

A full collection scans every container object a process holds. In an API process most of them
come from imports and from the parts built once (the embedding model, the language model) and
live as long as the process. Measured under `bench/load.py` (50 clients, 2 API processes on
SQLite): full collections took 100-240 ms, and one that ran while its thread held SQLite's write
lock stalled every writer of both processes; once the reads queued behind those writers, no
request was answered anywhere for 100-180 ms, five times in 30 s. Those stalls made the p99.

Two remedies:
- `settle()` collects once and moves what is left into the permanent generation (gc.freeze),
  which later collections do not scan. A server and a job worker settle when they start and
  after each model is loaded (runtime.Runtime); they then scan only what they made since.
- `pause()`/`resume()`: while a thread holds a database's write lock (store.db), no collection
  starts in this process; one that falls due runs right after the lock is given back, pausing
  this process alone, not every writer.
"""

from __future__ import annotations

import gc
import threading

_lock = threading.Lock()
_pausing = 0  # pause() calls not yet resumed
_paused_by_us = False  # whether the collector was enabled when the first of them came in


def settle() -> None:
    """Collect, then exempt every object still alive from later collections.

    Call it where what is alive will stay alive: at start-up, after a model is loaded. An
    object frozen here that later becomes part of an unreachable cycle is never reclaimed, so
    this is done a bounded number of times per process (start-up, and once per model loaded),
    never per request."""
    gc.collect()
    gc.freeze()


def pause() -> None:
    """No collection starts in this process until the matching `resume()`."""
    global _pausing, _paused_by_us
    with _lock:
        if _pausing == 0:
            _paused_by_us = gc.isenabled()
            gc.disable()
        _pausing += 1


def resume() -> None:
    """End one `pause()`; the collector is enabled again (if it was) when the last one ends."""
    global _pausing
    with _lock:
        _pausing -= 1
        if _pausing == 0 and _paused_by_us:
            gc.enable()
