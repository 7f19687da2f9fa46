"""Plain-Python references of the numba kernels in :mod:`sidecar.correlate.kernels`.

The specification of each kernel: lists and loops, no numpy, written to be obviously right
rather than fast. Tests check that every kernel agrees with its reference; the benchmark
measures how much faster the kernels are.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

#: A CSR matrix as plain sequences: (indptr, indices, data).
Csr = tuple[Sequence[int], Sequence[int], Sequence[float]]


def cosine_csr(q: Csr, c: Csr) -> list[list[float]]:
    """Dot product of every query row with every candidate row (cosine for L2-normalised rows)."""
    queries, candidates = _rows(q), _rows(c)
    return [[sum(w * c[f] for f, w in q.items() if f in c) for c in candidates] for q in queries]


def top2(scores: Sequence[Sequence[float]]) -> tuple[list[int], list[float], list[float]]:
    """Per row: index of the first largest score, the largest, and the second largest.

    A tie for first gives second == best. What a row lacks is reported as index -1, score 0.0.
    """
    best_idx: list[int] = []
    best: list[float] = []
    second: list[float] = []
    for row in scores:
        if not row:
            best_idx.append(-1)
            best.append(0.0)
            second.append(0.0)
            continue
        top = max(row)
        i = row.index(top)
        others = [s for j, s in enumerate(row) if j != i]
        best_idx.append(i)
        best.append(top)
        second.append(max(others) if others else 0.0)
    return best_idx, best, second


def combine(
    scores: Sequence[Sequence[Sequence[float]]],
    weights: Sequence[float],
    q_group: Sequence[int],
    c_group: Sequence[int],
    agree: float,
) -> list[list[float]]:
    """Weighted sum of k score matrices plus ``agree`` where query and candidate share a group.

    A negative query group means "no group" and never agrees.
    """
    n_q, n_c = len(q_group), len(c_group)
    out: list[list[float]] = []
    for i in range(n_q):
        row: list[float] = []
        for j in range(n_c):
            s = sum(w * m[i][j] for w, m in zip(weights, scores, strict=True))
            if q_group[i] >= 0 and q_group[i] == c_group[j]:
                s += agree
            row.append(s)
        out.append(row)
    return out


def _rows(m: Csr) -> list[dict[int, float]]:
    indptr, indices, data = m
    return [
        {indices[k]: data[k] for k in range(indptr[r], indptr[r + 1])}
        for r in range(len(indptr) - 1)
    ]


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
