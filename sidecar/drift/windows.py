"""Per-node sliding windows in event time: counts, errors and latency histograms.

A window of ``window_s`` is a ring of ``window_s / bucket_s`` tumbling buckets. Each bucket
keeps, per node, a sample count, an error count and a fixed log-spaced latency histogram (the
layout of :mod:`sidecar.drift.histograms`), so percentiles come from merged histograms and no
sample is stored. The newest bucket seen (the watermark) defines the window (the newest bucket
may still be filling); rows older than the window are dropped and counted, never re-opening an
expired bucket. Only spans count: rows with a node and a finite duration.

Memory bound: ``n_buckets x capacity x N_BINS x 4`` bytes of histogram plus ``2 x n_buckets x
capacity x 8`` of counters; capacity doubles on demand up to ``max_nodes`` (rows of higher
nodes are dropped and counted). Defaults (5 buckets, 4096 nodes): 15.8 MiB + 0.3 MiB, plus a
transient 6.3 MiB merged copy while a window is evaluated.

This module is the window *state*; judging a window against budgets (breach scores,
significance) is :mod:`sidecar.drift.budgets`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sidecar.drift.budgets import WindowFinding, evaluate_snapshot
from sidecar.drift.histograms import N_BINS, add_counts, latency_bins
from sidecar.errors import ConfigError
from sidecar.spec_index.index import BudgetEntry

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def span_rows(node: I64, duration_ms: F64, max_nodes: int) -> tuple[I64, int]:
    """Rows rate state counts (node in 0..max_nodes-1, finite duration); how many were over."""
    keep = (node >= 0) & np.isfinite(duration_ms)
    over = keep & (node >= max_nodes)
    return (keep & ~over).nonzero()[0], int(over.sum())


def grown_capacity(capacity: int, needed: int, max_nodes: int) -> int:
    """The capacity after doubling until ``needed`` nodes fit (never above ``max_nodes``)."""
    while capacity < needed:
        capacity *= 2
    return min(capacity, max_nodes)


@dataclass(frozen=True, slots=True)
class WindowSnapshot:
    """The merged window, indexed by node: counts, errors and latency histograms."""

    start_ns: int
    end_ns: int
    counts: I64
    errors: I64
    histograms: I64


class WindowState:
    """Bounded streaming state: per node, a ring of tumbling buckets in event time."""

    def __init__(
        self,
        n_nodes_capacity: int = 64,
        bucket_s: float = 60.0,
        window_s: float = 300.0,
        min_samples: int = 30,
        max_nodes: int = 4096,
    ) -> None:
        ratio = window_s / bucket_s if bucket_s > 0 else 0.0
        if bucket_s <= 0 or ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ConfigError(
                f"window_s ({window_s}) must be a positive multiple of bucket_s ({bucket_s})"
            )
        if min_samples < 1 or max_nodes < 1 or n_nodes_capacity < 1:
            raise ConfigError("min_samples, max_nodes and n_nodes_capacity must be >= 1")
        self.bucket_ns = round(bucket_s * 1e9)
        self.n_buckets = round(ratio)
        self.min_samples = min_samples
        self.max_nodes = max_nodes
        self.capacity = min(n_nodes_capacity, max_nodes)
        #: Newest bucket index seen (the watermark); None before the first row.
        self.head: int | None = None
        self.dropped_late = 0
        self.dropped_capacity = 0
        self.dropped_future = 0
        self._snapshot: WindowSnapshot | None = None
        #: Nodes below this have been counted (the rest of the state is zero).
        self._used = 0
        self._alloc(self.capacity)

    def _alloc(self, capacity: int) -> None:
        self._snapshot = None
        b = self.n_buckets
        self._hist: U32 = np.zeros((b, capacity, N_BINS), np.uint32)
        self._count: I64 = np.zeros((b, capacity), np.int64)
        self._errors: I64 = np.zeros((b, capacity), np.int64)

    def _grow(self, needed: int) -> None:
        capacity = grown_capacity(self.capacity, needed, self.max_nodes)
        old = (self._hist, self._count, self._errors)
        self._alloc(capacity)
        self._hist[:, : self.capacity] = old[0]
        self._count[:, : self.capacity] = old[1]
        self._errors[:, : self.capacity] = old[2]
        self.capacity = capacity

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the state arrays now (the bound is at ``max_nodes``)."""
        return int(self._hist.nbytes + self._count.nbytes + self._errors.nbytes)

    def _advance(self, bucket: int) -> None:
        """Move the watermark to ``bucket``, clearing the slots of buckets that expire."""
        start = bucket - self.n_buckets + 1 if self.head is None else self.head + 1
        for b in range(max(start, bucket - self.n_buckets + 1), bucket + 1):
            s = b % self.n_buckets
            self._hist[s] = 0
            self._count[s] = 0
            self._errors[s] = 0
        self.head = bucket
        self._snapshot = None

    def observe(
        self,
        node: I32,
        time_ns: I64,
        duration_ms: F64,
        is_error: Bools,
        horizon_ns: int | None = None,
    ) -> int:
        """Add a batch (rows aligned); spans only (finite duration, node >= 0). Rows kept."""
        node64 = np.asarray(node, np.int64)
        t = np.asarray(time_ns, np.int64)
        d = np.asarray(duration_ms, np.float64)
        err = np.asarray(is_error, np.bool_)
        if not node64.shape == t.shape == d.shape == err.shape:
            raise ValueError("node, time_ns, duration_ms and is_error must be aligned")
        rows, over = span_rows(node64, d, self.max_nodes)
        self.dropped_capacity += over
        if horizon_ns is not None:
            future = t[rows] > horizon_ns
            self.dropped_future += int(future.sum())
            rows = rows[~future]
        if rows.size == 0:
            return 0
        bucket = t[rows] // self.bucket_ns
        top = int(bucket.max())
        if self.head is None or top > self.head:
            self._advance(top)
        assert self.head is not None
        fresh = bucket > self.head - self.n_buckets
        self.dropped_late += int(fresh.size - fresh.sum())
        rows, bucket = rows[fresh], bucket[fresh]
        if rows.size == 0:
            return 0
        nodes = node64[rows]
        top_node = int(nodes.max())
        if top_node >= self.capacity:
            self._grow(top_node + 1)
        self._used = max(self._used, top_node + 1)
        cell = (bucket % self.n_buckets) * self.capacity + nodes
        self._snapshot = None
        add_counts(self._count, cell)
        add_counts(self._errors, cell[err[rows]])
        add_counts(self._hist, cell * N_BINS + latency_bins(d[rows]))
        return int(rows.size)

    def snapshot(self) -> WindowSnapshot | None:
        """The current window merged over its buckets (None before any row).

        Kept until the state changes: treat its arrays as read-only.
        """
        if self.head is None:
            return None
        if self._snapshot is None:
            # Histograms of nodes never counted are zero: only the used ones are summed.
            histograms = np.zeros((self.capacity, N_BINS), np.int64)
            self._hist[:, : self._used].sum(axis=0, dtype=np.int64, out=histograms[: self._used])
            self._snapshot = WindowSnapshot(
                start_ns=(self.head - self.n_buckets + 1) * self.bucket_ns,
                end_ns=(self.head + 1) * self.bucket_ns,
                counts=self._count.sum(axis=0),
                errors=self._errors.sum(axis=0),
                histograms=histograms,
            )
        return self._snapshot

    def evaluate(self, budgets: Mapping[int, BudgetEntry] | None = None) -> list[WindowFinding]:
        """Statistics and budget breaches of every node with at least ``min_samples``."""
        snap = self.snapshot()
        if snap is None:
            return []
        return evaluate_snapshot(snap, budgets or {}, self.min_samples)
