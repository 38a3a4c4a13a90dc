"""Opaque, URL-safe, time-sortable, unguessable ids and millisecond clocks."""

from __future__ import annotations

import os
import threading
import time

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lowercase
TIME_CHARS = 10  # 50 bits: milliseconds since the epoch
SEQUENCE_CHARS = 4  # 20 bits: the id's rank among those made in the same millisecond
RANDOM_BITS = 80
RANDOM_CHARS = RANDOM_BITS // 5
ID_LENGTH = TIME_CHARS + SEQUENCE_CHARS + RANDOM_CHARS
_SEQUENCE_MAX = 32**SEQUENCE_CHARS - 1
_lock = threading.Lock()
_last = (0, 0)  # (milliseconds, sequence) of the previous id


def now_ms() -> int:
    """Wall-clock time in integer milliseconds, the unit of every timestamp in the API."""
    return time.time_ns() // 1_000_000


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str = "") -> str:
    """A 30-character id: milliseconds, a sequence within the millisecond, 80 random bits.

    The time and sequence make ids from one process sort in creation order (lists page by
    (createdAt, id), and rows made in the same millisecond must keep it); the last 80 bits are
    fresh from the OS for every id, so knowing one id tells nothing about the next one, even
    one made in the same millisecond (an id reaches a conversation: it must not be guessable).
    A sequence that runs out borrows the next millisecond, which keeps the order.
    """
    global _last
    with _lock:
        ms = now_ms()
        last_ms, last_seq = _last
        if ms > last_ms:
            seq = 0
        elif last_seq < _SEQUENCE_MAX:
            ms, seq = last_ms, last_seq + 1
        else:
            ms, seq = last_ms + 1, 0
        _last = (ms, seq)
    rand = int.from_bytes(os.urandom(RANDOM_BITS // 8), "big")
    return f"{prefix}{_b32(ms, TIME_CHARS)}{_b32(seq, SEQUENCE_CHARS)}{_b32(rand, RANDOM_CHARS)}"
