"""numba kernels over the rows of a batch: hash join, grouping by key, key mixing, inheritance.

They run on every batch (linking spans to parents and logs to spans, grouping rows by shape or
series, hashing columns into keys, passing a node down a chain of unmatched spans), where the
scoring kernels of :mod:`sidecar.correlate.kernels` run only per new shape. Separate from those
because they serve the engine's per-batch bookkeeping (the correlator, shapes, annotations and
drift checks use them), not heuristic similarity.

Each kernel has a plain-Python reference in :mod:`sidecar.correlate.row_kernels_reference` (its
specification; tests check they agree) and a typed wrapper here that checks its input, so a
malformed array raises ``ValueError`` instead of reading or writing out of bounds inside
compiled code. Kernels compile as :func:`sidecar.correlate.jit.jit` says (cached on disk, GIL
released).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.correlate.jit import jit as _jit

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]


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
