"""Opaque, URL-safe, time-sortable ids and millisecond clocks."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase


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
    """A 26-character id: 48 bits of milliseconds then 80 random bits, so ids sort by creation."""
    stamp = _b32(now_ms(), 10)
    rand = _b32(int.from_bytes(os.urandom(10), "big"), 16)
    return f"{prefix}{stamp}{rand}"
