"""Plain-Python references of the numba kernels in :mod:`sidecar.correlate.row_kernels`.

The specification of each row kernel (hash join, grouping by key, key mixing, inheritance):
lists, dicts and loops, no numpy, written to be obviously right rather than fast. Tests check
that every kernel agrees with its reference. Separate from
:mod:`sidecar.correlate.kernels_reference` as the kernels are: one reference module per kernel
module.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence


def join_rows(keys: Sequence[int], probes: Sequence[int]) -> list[int]:
    """For each probe, the first index of ``keys`` holding it, else -1 (0 never matches)."""
    first: dict[int, int] = {}
    for row, key in enumerate(keys):
        if key != 0 and key not in first:
            first[key] = row
    return [first.get(p, -1) if p != 0 else -1 for p in probes]


def unique_rows(keys: Sequence[int]) -> tuple[list[int], list[int]]:
    """(first index of each distinct key in ascending key order, each key's rank among them)."""
    distinct = sorted(set(keys))
    rank = {k: r for r, k in enumerate(distinct)}
    first: dict[int, int] = {}
    for row, key in enumerate(keys):
        first.setdefault(key, row)
    return [first[k] for k in distinct], [rank[k] for k in keys]


def mix_columns(seed: int, columns: Sequence[Sequence[int]], n: int) -> list[int]:
    """Per row, the splitmix64 finalizer folded over the columns: h = mix64(h ^ value)."""
    mask = (1 << 64) - 1
    out: list[int] = []
    for row in range(n):
        h = seed
        for col in columns:
            x = h ^ col[row]
            x ^= x >> 30
            x = (x * 0xBF58476D1CE4E5B9) & mask
            x ^= x >> 27
            x = (x * 0x94D049BB133111EB) & mask
            h = x ^ (x >> 31)
        out.append(h)
    return out


def inherit_nodes(
    parents: Sequence[int], todo: Sequence[bool],
    columns: tuple[list[int], list[int], list[float]], *, factor: float, max_depth: int,
) -> list[bool]:  # fmt: skip
    """Level by level: a ``todo`` row whose parent has a node takes it (confidence times
    ``factor``, rounded to float32 as the kernel's columns are), for at most ``max_depth``
    levels; in place. The rows that took one."""
    node, context, confidence = columns
    pending = [bool(t) for t in todo]
    done = [False] * len(parents)
    for _ in range(max_depth):
        ready = [r for r, t in enumerate(pending) if t and node[parents[r]] != 0]
        if not ready:
            break
        updates = [(r, node[parents[r]], context[parents[r]],
                    _f32(_f32(confidence[parents[r]]) * _f32(factor))) for r in ready]  # fmt: skip
        for r, n, c, conf in updates:
            node[r], context[r], confidence[r] = n, c, conf
            pending[r], done[r] = False, True
    return done


def _f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (a product of two float32 is exact in a double)."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])
