"""numba kernels of heuristic correlation: sparse cosine, score combination, best-two.

They run once per new shape and index version: a few to a few thousand query shapes against
every spec operation. Each kernel has a plain-Python reference in
:mod:`sidecar.correlate.kernels_reference` (its specification; tests check they agree) and a
typed wrapper here that checks its input, so a malformed array raises ``ValueError`` instead of
reading or writing out of bounds inside compiled code.

Sparse matrices are CSR triples ``(indptr int64[n + 1], indices int32[nnz], data float32[nnz])``
with non-negative, duplicate-free indices per row (sorted is not required; rows built by
:class:`sidecar.correlate.features.FeatureSpace` are sorted, and then the sums are taken in the
same order as the reference). Kernels compile with ``cache=True`` (the machine code is kept in
``__pycache__``, so a process pays the compile only when the source or numba changes) and
release the GIL, so an engine may score query chunks on several threads.

No Jaccard kernel: on the Online Boutique ranking set (tests/unit/correlate/test_kernels.py)
Jaccard over token-id sets ranked 25 of 27 renamed names first against 26 for TF-IDF token
cosine, and mixed with trigrams its mean margin was 0.27 against 0.49 for cosine: a set
measure cannot tell ``hipstershop``/``service`` (in every bound name) from ``checkout``.

Memory: an ``[nq, nc]`` float32 matrix is 4 * nq * nc bytes (400 MB for 10,000 x 10,000).
Score query shapes in chunks (a few hundred rows) and pass ``out`` buffers to reuse them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]
#: A CSR matrix: (indptr, indices, data).
Csr = tuple[I64, I32, F32]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def _jit(fn: _Fn) -> _Fn:
    """``numba.njit`` with on-disk caching and the GIL released; keeps ``fn``'s type for mypy."""
    return cast(_Fn, numba.njit(cache=True, nogil=True)(fn))


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


# --- joins ----------------------------------------------------------------------------------
# Linking rows by 64-bit keys (a span's parent, a log's span) is a hash join: O(n) with an
# open-addressing table, where sorting and binary search cost O(n log n) and dominated the
# engine's time per batch.


@_jit
def _join_kernel(keys: npt.NDArray[np.uint64], probes: npt.NDArray[np.uint64],
                 out: I64) -> None:  # fmt: skip
    size = 1
    while size < 2 * len(keys) + 1:
        size *= 2
    mask = np.uint64(size - 1)
    slot_key = np.zeros(size, np.uint64)
    slot_row = np.full(size, -1, np.int64)
    for row in range(len(keys)):
        k = keys[row]
        if k == 0:
            continue
        h = (k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)
        i = h & mask
        while slot_row[i] >= 0 and slot_key[i] != k:
            i = (i + np.uint64(1)) & mask
        if slot_row[i] < 0:  # the first row with a key wins
            slot_key[i] = k
            slot_row[i] = row
    for j in range(len(probes)):
        k = probes[j]
        out[j] = -1
        if k == 0:
            continue
        h = (k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)
        i = h & mask
        while slot_row[i] >= 0:
            if slot_key[i] == k:
                out[j] = slot_row[i]
                break
            i = (i + np.uint64(1)) & mask


def join_rows(keys: npt.NDArray[np.uint64], probes: npt.NDArray[np.uint64]) -> I64:
    """For each probe, the first row of ``keys`` holding it, else -1 (key 0 never matches)."""
    k = np.ascontiguousarray(keys, np.uint64)
    p = np.ascontiguousarray(probes, np.uint64)
    if k.ndim != 1 or p.ndim != 1:
        raise ValueError("join_rows takes 1-D key arrays")
    out = np.empty(len(p), np.int64)
    _join_kernel(k, p, out)
    return out


# --- grouping -------------------------------------------------------------------------------
# Grouping the rows of a batch by a 64-bit key (shape hash, series key, call pattern) is what
# ``np.unique(..., return_index=True, return_inverse=True)`` does with a stable O(n log n)
# sort of all rows; a batch of 8192 rows has tens to hundreds of distinct keys, so a hash
# table over the rows and a sort of the distinct keys only is several times faster, with the
# same result (distinct keys ascending, the first row of each, every row's group).


@_jit
def _unique_table(keys: npt.NDArray[np.uint64], first: I64, groups: int,
                  size: int) -> tuple[npt.NDArray[np.uint64], I64]:  # fmt: skip
    """An open-addressing table of ``size`` slots holding the first ``groups`` groups."""
    mask = np.uint64(size - 1)
    slot_key = np.zeros(size, np.uint64)
    slot_group = np.full(size, -1, np.int64)
    for g in range(groups):
        k = keys[first[g]]
        i = ((k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)) & mask
        while slot_group[i] >= 0:
            i = (i + np.uint64(1)) & mask
        slot_key[i] = k
        slot_group[i] = g
    return slot_key, slot_group


@_jit
def _unique_fill(keys: npt.NDArray[np.uint64], out: tuple[I64, I64],
                 table: tuple[npt.NDArray[np.uint64], I64], at: tuple[int, int],
                 ) -> tuple[int, int]:  # fmt: skip
    """Group rows (into ``out``: inverse, first) from row ``at[0]`` with ``at[1]`` groups so
    far, until the table is half full: (next row, groups so far)."""
    inverse, first = out
    start, groups = at
    slot_key, slot_group = table
    mask = np.uint64(len(slot_key) - 1)
    full = len(slot_key) // 2
    for row in range(start, len(keys)):
        k = keys[row]
        i = ((k * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(17)) & mask
        while slot_group[i] >= 0 and slot_key[i] != k:
            i = (i + np.uint64(1)) & mask
        g = slot_group[i]
        if g < 0:
            g = groups
            groups += 1
            slot_key[i] = k
            slot_group[i] = g
            first[g] = row
        inverse[row] = g
        if groups >= full:
            return row + 1, groups
    return len(keys), groups


@_jit
def _unique_kernel(keys: npt.NDArray[np.uint64], inverse: I64) -> tuple[I64, I64]:
    # The table starts small and doubles when half full: a batch has few distinct keys, and a
    # table sized for every row (a 512 KiB clear for 8192 rows) costs more than the grouping.
    n = len(keys)
    first = np.empty(n, np.int64)
    size, row, groups = 16, 0, 0
    while True:
        table = _unique_table(keys, first, groups, size)
        row, groups = _unique_fill(keys, (inverse, first), table, (row, groups))
        if row >= n:
            break
        size *= 2
    distinct = np.empty(groups, np.uint64)
    for g in range(groups):
        distinct[g] = keys[first[g]]
    order = np.argsort(distinct)
    rank = np.empty(groups, np.int64)
    for r in range(groups):
        rank[order[r]] = r
    for row in range(n):
        inverse[row] = rank[inverse[row]]
    first_sorted = np.empty(groups, np.int64)
    for r in range(groups):
        first_sorted[r] = first[order[r]]
    return first_sorted, order


_SIGN = np.uint64(1 << 63)


def unique_rows(keys: npt.NDArray[np.uint64] | I64) -> tuple[I64, I64]:
    """(first row of each distinct key, in ascending key order; every row's group index).

    The same as ``np.unique(keys, return_index=True, return_inverse=True)[1:]`` for 1-D
    uint64 or int64 keys.
    """
    raw = np.asarray(keys)
    if raw.ndim != 1:
        raise ValueError("unique_rows takes a 1-D key array")
    if raw.dtype == np.int64:
        k = raw.view(np.uint64) ^ _SIGN  # order-preserving: int64 order as uint64 order
    elif raw.dtype == np.uint64:
        k = np.ascontiguousarray(raw, np.uint64)
    else:
        raise ValueError(f"unique_rows takes uint64 or int64 keys, not {raw.dtype}")
    inverse = np.empty(len(k), np.int64)
    first, _ = _unique_kernel(k, inverse)
    return first, inverse


@_jit
def _mix_kernel(column: npt.NDArray[np.integer[Any]], out: npt.NDArray[np.uint64]) -> None:
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    for row in range(out.shape[0]):
        x = out[row] ^ np.uint64(column[row])
        x = x ^ (x >> np.uint64(30))
        x = x * m1
        x = x ^ (x >> np.uint64(27))
        x = x * m2
        out[row] = x ^ (x >> np.uint64(31))


def mix_columns(seed: int, columns: Sequence[npt.NDArray[np.integer[Any]]], n: int,
                ) -> npt.NDArray[np.uint64]:  # fmt: skip
    """Per row, ``h = mix64(h ^ column[row])`` over the columns in order, from ``seed``.

    Columns hold non-negative integers (codes, flags); one compiled loop per column.
    """
    out = np.full(n, seed, np.uint64)
    for col in columns:
        if col.shape != (n,):
            raise ValueError("mix_columns takes columns of n entries")
        _mix_kernel(np.ascontiguousarray(col), out)
    return out


# --- inheritance ----------------------------------------------------------------------------
# An unmatched internal or client span takes the node of its nearest matched ancestor through
# a chain of such spans, losing ``factor`` of confidence per hop. Level-by-level in numpy this
# is a dozen array operations per level; here each row walks up its chain once.


@_jit
def _inherit_kernel(parents: I64, todo: npt.NDArray[np.bool_], columns: tuple[I32, I32, F32],
                    hop: tuple[np.float32, int], done: npt.NDArray[np.bool_]) -> None:  # fmt: skip
    node, context, confidence = columns
    factor, max_depth = hop
    for r in range(len(parents)):
        if not todo[r]:
            continue
        x, steps = r, 0
        while todo[x] and steps <= max_depth:
            x = parents[x]
            steps += 1
        if todo[x] or node[x] == 0 or steps > max_depth:
            continue
        c = confidence[x]
        for _ in range(steps):
            c = np.float32(c * factor)
        node[r], context[r], confidence[r], done[r] = node[x], context[x], c, True


def inherit_nodes(
    parents: I64, todo: npt.NDArray[np.bool_], columns: tuple[I32, I32, F32], *,
    factor: float, max_depth: int,
) -> npt.NDArray[np.bool_]:  # fmt: skip
    """Rows in ``todo`` take node, context and confidence (``columns``; the confidence times
    ``factor`` per hop) of their nearest ancestor outside ``todo`` that has a node, through at
    most ``max_depth`` hops of ``todo`` rows; in place. The rows that took one.

    ``todo`` rows must have a parent row (``parents`` >= 0) and node 0.
    """
    n = len(parents)
    node, context, confidence = columns
    if not (len(todo) == len(node) == len(context) == len(confidence) == n):
        raise ValueError("inherit_nodes takes aligned columns")
    if bool(np.any(todo & ((parents < 0) | (parents >= n)))):
        raise ValueError("inherit_nodes: a row to inherit has no parent row")
    done = np.zeros(n, np.bool_)
    _inherit_kernel(np.ascontiguousarray(parents, np.int64), np.ascontiguousarray(todo, np.bool_),
                    columns, (np.float32(factor), max_depth), done)  # fmt: skip
    return done
