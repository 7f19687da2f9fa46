"""numba kernels of heuristic correlation: sparse cosine, score combination, best-two.

They run once per new shape and index version: a few to a few thousand query shapes against
every spec operation. Each kernel has a plain-Python reference in
:mod:`sidecar.correlate.kernels_reference` (its specification; tests check they agree) and a
typed wrapper here that checks its input, so a malformed array raises ``ValueError`` instead of
reading or writing out of bounds inside compiled code. The per-batch kernels over rows (hash
join, grouping, key mixing, inheritance) are in :mod:`sidecar.correlate.row_kernels`.

Sparse matrices are CSR triples ``(indptr int64[n + 1], indices int32[nnz], data float32[nnz])``
with non-negative, duplicate-free indices per row (sorted is not required; rows built by
:class:`sidecar.correlate.features.FeatureSpace` are sorted, and then the sums are taken in the
same order as the reference). Kernels compile with ``cache=True`` (the machine code is kept in
``__pycache__``, so a process pays the compile only when the source or numba changes) and
release the GIL, so an engine may score query chunks on several threads
(:mod:`sidecar.correlate.jit`).

No Jaccard kernel: on the Online Boutique ranking set (tests/unit/correlate/test_kernels.py)
Jaccard over token-id sets ranked 25 of 27 renamed names first against 26 for TF-IDF token
cosine, and mixed with trigrams its mean margin was 0.27 against 0.49 for cosine: a set
measure cannot tell ``hipstershop``/``service`` (in every bound name) from ``checkout``.

Memory: an ``[nq, nc]`` float32 matrix is 4 * nq * nc bytes (400 MB for 10,000 x 10,000).
Score query shapes in chunks (a few hundred rows) and pass ``out`` buffers to reuse them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from sidecar.correlate.jit import jit as _jit

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]
#: A CSR matrix: (indptr, indices, data).
Csr = tuple[I64, I32, F32]


@_jit
def _cosine_kernel(out: F32, q: Csr, c: Csr) -> None:
    # Scatter-accumulate over an inverted index of the candidates (their columns): a query row
    # touches only the candidates that share a feature with it. A sorted-index merge of every
    # (query, candidate) pair was measured 65-85x slower: nearly all pairs share nothing, and
    # the merge pays a branchy walk over both rows to find that out.
    q_indptr, q_indices, q_data = q
    c_indptr, c_indices, c_data = c
    n_c = c_indptr.shape[0] - 1
    n_features = 0
    for k in range(c_indices.shape[0]):
        n_features = max(n_features, c_indices[k] + 1)
    starts = np.zeros(n_features + 1, np.int64)
    for k in range(c_indices.shape[0]):
        starts[c_indices[k] + 1] += 1
    for f in range(n_features):
        starts[f + 1] += starts[f]
    cursor = starts[:-1].copy()
    post_row = np.empty(c_indices.shape[0], np.int32)
    post_val = np.empty(c_indices.shape[0], np.float32)
    for j in range(n_c):
        for k in range(c_indptr[j], c_indptr[j + 1]):
            f = c_indices[k]
            p = cursor[f]
            post_row[p] = j
            post_val[p] = c_data[k]
            cursor[f] = p + 1
    for i in range(q_indptr.shape[0] - 1):
        row = out[i]
        row[:] = 0.0
        for a in range(q_indptr[i], q_indptr[i + 1]):
            f = q_indices[a]
            if f >= n_features:
                continue
            w = q_data[a]
            for p in range(starts[f], starts[f + 1]):
                row[post_row[p]] += w * post_val[p]


@_jit
def _top2_kernel(scores: F32, best_idx: I32, best: F32, second: F32) -> None:
    n_q, n_c = scores.shape
    for i in range(n_q):
        if n_c == 0:
            best_idx[i] = -1
            best[i] = 0.0
            second[i] = 0.0
            continue
        bi = 0
        b = scores[i, 0]
        s = -np.inf
        for j in range(1, n_c):
            v = scores[i, j]
            if v > b:
                s = b
                b = v
                bi = j
            elif v > s:
                s = v
        best_idx[i] = bi
        best[i] = b
        second[i] = s if n_c > 1 else 0.0


@_jit
def _combine_kernel(
    out: F32, scores: F32, weights: F32, groups: tuple[I32, I32], agree: float
) -> None:
    # Row by row through a scratch row, so the inner loops stream (and vectorise) and ``out``
    # may alias any of the inputs.
    q_group, c_group = groups
    n_k, n_q, n_c = scores.shape
    bonus = np.float32(agree)
    row = np.empty(n_c, np.float32)
    for i in range(n_q):
        row[:] = 0.0
        for t in range(n_k):
            w = weights[t]
            for j in range(n_c):
                row[j] += w * scores[t, i, j]
        g = q_group[i]
        if g >= 0:
            for j in range(n_c):
                if c_group[j] == g:
                    row[j] += bonus
        for j in range(n_c):  # a loop: the slice assignment out[i, :] = row compiles 10x slower
            out[i, j] = row[j]


def cosine_csr(q: Csr, c: Csr, out: F32 | None = None) -> F32:
    """Dot product of every query row with every candidate row: float32[nq, nc].

    For L2-normalised rows (as :class:`~sidecar.correlate.features.FeatureSpace` builds them)
    this is their cosine similarity. ``out`` (C-contiguous float32[nq, nc]) is reused if given.
    """
    q, c = _csr(q, "q"), _csr(c, "c")
    out = _out(out, (q[0].shape[0] - 1, c[0].shape[0] - 1))
    _cosine_kernel(out, q, c)
    return out


def top2(scores: F32) -> tuple[I32, F32, F32]:
    """Per row: index of the first largest score, the largest, and the second largest.

    A tie for first gives ``second == best`` (margin 0). A row with one column reports
    ``second`` 0.0; a row with none reports index -1 and 0.0 scores. Scores must not be NaN.
    """
    s = np.ascontiguousarray(scores, np.float32)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D, got shape {s.shape}")
    n_q = s.shape[0]
    best_idx = np.empty(n_q, np.int32)
    best = np.empty(n_q, np.float32)
    second = np.empty(n_q, np.float32)
    _top2_kernel(s, best_idx, best, second)
    return best_idx, best, second


def combine(
    scores: F32,
    weights: Sequence[float],
    *,
    q_group: I32 | None = None,
    c_group: I32 | None = None,
    agree: float = 0.0,
    out: F32 | None = None,
) -> F32:
    """Weighted sum of k score matrices (float32[k, nq, nc]) plus a group-agreement bonus.

    ``out[i, j] = sum_t weights[t] * scores[t, i, j] + agree * (q_group[i] == c_group[j] >= 0)``.
    Groups are small integer codes (for context agreement: the context of the item's service
    and of the operation); -1 means none and never agrees. ``out`` may be one of the inputs.
    """
    s = np.ascontiguousarray(scores, np.float32)
    if s.ndim != 3:
        raise ValueError(f"scores must be 3-D [k, nq, nc], got shape {s.shape}")
    n_k, n_q, n_c = s.shape
    w = np.ascontiguousarray(weights, np.float32)
    if w.shape != (n_k,):
        raise ValueError(f"{w.shape[0]} weights for {n_k} score matrices")
    qg = _groups(q_group, n_q, "q_group")
    cg = _groups(c_group, n_c, "c_group")
    out = _out(out, (n_q, n_c))
    _combine_kernel(out, s, w, (qg, cg), float(agree))
    return out


def _csr(m: Csr, name: str) -> Csr:
    indptr = np.ascontiguousarray(m[0], np.int64)
    indices = np.ascontiguousarray(m[1], np.int32)
    data = np.ascontiguousarray(m[2], np.float32)
    if indptr.ndim != 1 or indptr.shape[0] < 1 or indptr[0] != 0:
        raise ValueError(f"{name}: indptr must be 1-D and start at 0")
    if np.any(np.diff(indptr) < 0) or indptr[-1] != indices.shape[0]:
        raise ValueError(f"{name}: indptr must be non-decreasing and end at len(indices)")
    if data.shape != indices.shape:
        raise ValueError(f"{name}: data and indices differ in length")
    if indices.shape[0] and indices.min() < 0:
        raise ValueError(f"{name}: negative feature index")
    return indptr, indices, data


def _groups(groups: I32 | None, n: int, name: str) -> I32:
    if groups is None:
        return np.full(n, -1, np.int32)
    g = np.ascontiguousarray(groups, np.int32)
    if g.shape != (n,):
        raise ValueError(f"{name} has shape {g.shape}, expected ({n},)")
    return g


def _out(out: F32 | None, shape: tuple[int, int]) -> F32:
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be C-contiguous float32{list(shape)}")
    return out
