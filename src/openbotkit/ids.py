"""Opaque, URL-safe, time-sortable ids and millisecond clocks."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
_RANDOM_BITS = 80
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, random part) of the previous id


def now_ms() -> int:
    """Wall-clock time in integer milliseconds, the unit of every timestamp in the API."""
    return time.time_ns() // 1_000_000


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str = "") -> str:
    """A 26-character id: 48 bits of milliseconds, then 80 bits that are random for the first id
    of a millisecond and incremented after it, so ids from one process sort in creation order
    (lists page by (createdAt, id) and rows created in the same millisecond must keep it)."""
    global _last
    with _lock:
        ms = now_ms()
        last_ms, last_rand = _last
        if ms <= last_ms:
            ms, rand = last_ms, last_rand + 1
        else:
            rand = int.from_bytes(os.urandom(_RANDOM_BITS // 8), "big") >> 1  # room to increment
        _last = (ms, rand)
    return f"{prefix}{_b32(ms, 10)}{_b32(rand, 16)}"
