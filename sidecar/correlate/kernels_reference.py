"""Plain-Python references of the numba kernels in :mod:`sidecar.correlate.kernels`.

The specification of each kernel: lists and loops, no numpy, written to be obviously right
rather than fast. Tests check that every kernel agrees with its reference; the benchmark
measures how much faster the kernels are. The references of the per-batch row kernels
(:mod:`sidecar.correlate.row_kernels`) are in :mod:`sidecar.correlate.row_kernels_reference`.
"""

from __future__ import annotations

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
