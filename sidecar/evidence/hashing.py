"""Stable 64-bit hashing shared by evidence ids, shape hashing and span keys.

Vectorised splitmix64 finalizer over uint64 arrays (wrapping arithmetic), and a stable hash
of strings (Python's ``hash()`` is salted per process, so it cannot name evidence).
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

U64 = npt.NDArray[np.uint64]

#: splitmix64 multipliers, and its golden-ratio seed.
M1 = np.uint64(0xBF58476D1CE4E5B9)
M2 = np.uint64(0x94D049BB133111EB)
SEED = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: U64) -> U64:
    """splitmix64 finalizer, element-wise (call inside ``np.errstate(over="ignore")``)."""
    x = x ^ (x >> np.uint64(30))
    x = x * M1
    x = x ^ (x >> np.uint64(27))
    x = x * M2
    return x ^ (x >> np.uint64(31))


def hash_text(text: str) -> int:
    """A stable 64-bit hash of a string."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
