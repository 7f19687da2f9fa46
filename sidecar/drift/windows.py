"""Per-node sliding windows in event time: counts, errors and latency histograms.

A window of ``window_s`` is a ring of ``window_s / bucket_s`` tumbling buckets. Each bucket
keeps, per node, a sample count, an error count and a fixed log-spaced latency histogram
(:data:`N_BINS` bins from 1 µs to 10 min, each x1.106 wide; percentiles interpolated inside a
bin are typically within 3 % and always within one bin), so percentiles come from merged
histograms and no sample is stored. The newest bucket seen (the watermark) defines the window
(the newest bucket may still be filling); rows older than the window are dropped and counted,
never re-opening an expired bucket. Only spans count: rows with a node and a finite duration.

Memory bound: ``n_buckets x capacity x N_BINS x 4`` bytes of histogram plus ``2 x n_buckets x
capacity x 8`` of counters; capacity doubles on demand up to ``max_nodes`` (rows of higher
nodes are dropped and counted). Defaults (5 buckets, 4096 nodes): 15.8 MiB + 0.3 MiB, plus a
transient 6.3 MiB merged copy while a window is evaluated.

Budget score (per breached budget, the finding's score is the highest)::

    severity   = 1 - budget / observed           (observed p50/p95/p99 or error ratio)
    z          = (f - a) / sqrt(max(a, 0.5/n) * max(1 - a, 0.5/n) / n)
    confidence = clip(z / 3, 0, 1)
    score      = severity * confidence

where ``a`` is the fraction the budget allows above it (0.05 for p95, 0.01 for p99, 0.5 for
p50, ``error_rate`` for errors), ``f`` the observed fraction (samples slower than the budget,
or errors) and ``n`` the window's samples: twice the budget scores 0.5 when the excess is 3
standard errors clear of the allowance, ten times scores 0.9.

Significance (whether a breach is acted on at all): ``p_value`` is the exact binomial tail
``P(X >= k)``, ``X ~ Binomial(n, a)``, ``k`` the samples over the budget (or the errors): how
likely a window that just keeps its budget is to look this bad. The score grades a breach; the
p-value decides whether the excess is more than the noise of a small sample (one error in 30
calls is 3.3 %, over a 1 % budget, and happens to a third of the windows that keep it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sidecar.errors import ConfigError
from sidecar.spec_index.index import BudgetEntry, MetricEntry

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

#: Latency histogram layout: bin 0 is below 1 µs (and 0), bin N_BINS-1 is 10 min or more.
LATENCY_MIN_MS = 1e-3
LATENCY_MAX_MS = 6e5
LATENCY_BINS = 200
N_BINS = LATENCY_BINS + 2
#: Width of one bin in natural-log units (ln 6e8 / 200 ~ 0.101, i.e. x1.106 per bin).
BIN_LOG_WIDTH = math.log(LATENCY_MAX_MS / LATENCY_MIN_MS) / LATENCY_BINS

LATENCY_BUDGET = "latency_budget"
ERROR_BUDGET = "error_budget"
#: Standard errors of excess over the allowance at which a breach gets full confidence.
Z_FULL_CONFIDENCE = 3.0
_QUANTILES = (0.5, 0.95, 0.99)


def latency_bins(duration_ms: F64) -> I64:
    """Histogram bin of each duration (NaN and anything below 1 µs land in bin 0, +inf last)."""
    d = np.asarray(duration_ms, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.floor(np.log(d / LATENCY_MIN_MS) / BIN_LOG_WIDTH) + 1.0
    # fmax/fmin drop NaN (to bin 0) and bound the infinities, like nan_to_num then clip.
    np.fmax(x, 0.0, out=x)
    np.fmin(x, N_BINS - 1, out=x)
    return x.astype(np.int64)


def _bin_position(value_ms: float) -> float:
    """Continuous bin coordinate of a duration: bin k covers [k, k+1)."""
    if value_ms <= LATENCY_MIN_MS:
        return 1.0
    return min(math.log(value_ms / LATENCY_MIN_MS) / BIN_LOG_WIDTH + 1.0, float(N_BINS - 1))


def quantiles(histograms: npt.ArrayLike, qs: Sequence[float]) -> F64:
    """Quantiles (ms) of each histogram row, log-linear inside a bin; NaN for empty rows."""
    h = np.atleast_2d(np.asarray(histograms, np.float64))
    n = h.sum(axis=1)
    cum = np.cumsum(h, axis=1)
    out = np.full((h.shape[0], len(qs)), np.nan)
    rows = (n > 0).nonzero()[0]
    if rows.size == 0:
        return out
    cum, h, n = cum[rows], h[rows], n[rows]
    # All quantiles at once (rows x quantiles): the same arithmetic per entry as one pass per
    # quantile, in a dozen array operations instead of a dozen per quantile.
    rank = np.maximum(np.asarray(qs, np.float64)[None, :] * n[:, None], 1e-9)
    k = (cum[:, None, :] >= rank[:, :, None]).argmax(axis=2)
    r = np.arange(k.shape[0])[:, None]
    in_bin = h[r, k]
    below = cum[r, k] - in_bin
    # minimum(maximum()) is np.clip without its per-call overhead (NaN propagates alike).
    frac = np.minimum(np.maximum((rank - below) / np.maximum(in_bin, 1.0), 0.0), 1.0)
    ms = LATENCY_MIN_MS * np.exp((k - 1 + frac) * BIN_LOG_WIDTH)
    out[rows] = np.minimum(np.maximum(ms, LATENCY_MIN_MS), LATENCY_MAX_MS)
    return out


def fraction_above(histogram: npt.ArrayLike, threshold_ms: float) -> float:
    """Share of a histogram's samples slower than a threshold (log-linear inside its bin)."""
    h = np.asarray(histogram, np.float64)
    n = float(h.sum())
    if n <= 0:
        return 0.0
    pos = _bin_position(threshold_ms)
    k = int(pos)
    above = float(h[k + 1 :].sum()) + float(h[k]) * (1.0 - (pos - k))
    return above / n


def add_counts(target: npt.NDArray[np.integer], index: I64) -> None:
    """``target.flat[index] += 1`` with repeated indices counted (np.add.at, ~5x faster).

    Counted with one ``bincount`` over the span of the indices (rows of a batch fall in a few
    nearby cells), not a sort.
    """
    if index.size == 0:
        return
    lo = int(index.min())
    counts = np.bincount(index - lo)
    flat = target.reshape(-1)
    window = flat[lo : lo + len(counts)]
    window += counts.astype(flat.dtype)


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
class Breach:
    """One budget a window exceeds: which measure, by how much, how strongly."""

    kind: str
    measure: str
    observed: float
    budget: float
    score: float
    #: P(a window keeping the budget looks at least this bad): the binomial tail.
    p_value: float = 1.0


@dataclass(frozen=True, slots=True)
class WindowFinding:
    """Rate statistics of one node over the current window, with the budgets it breaches."""

    node: int
    start_ns: int
    end_ns: int
    samples: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    error_ratio: float
    breaches: tuple[Breach, ...]
    score: float


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


def budget_limits(budgets: Sequence[BudgetEntry]) -> F64:
    """Per budget, its p50, p95, p99 and error-rate limits (NaN where absent): the table
    :func:`evaluate_snapshot` tests every node against at once."""
    limits = [(b.p50_ms, b.p95_ms, b.p99_ms, b.error_rate) for b in budgets]
    return np.array([[np.nan if x is None else x for x in row] for row in limits]).reshape(-1, 4)


def evaluate_snapshot(
    snap: WindowSnapshot, budgets: Mapping[int, BudgetEntry], min_samples: int,
    nodes: npt.NDArray[np.int64] | None = None, limits: F64 | None = None,
) -> list[WindowFinding]:  # fmt: skip
    """Window findings of a snapshot (nodes with enough samples, ascending node); only of
    ``nodes`` (ascending) when given.

    With ``limits`` (:func:`budget_limits` of the budgets of ``nodes``, row by row) only the
    nodes that breach a budget are returned: most windows keep every budget, and one
    vectorised comparison spares building a finding per node that nobody acts on.
    """
    if nodes is None:
        if limits is not None:
            raise ValueError("limits are per node of nodes: pass both")
        nodes = (snap.counts >= min_samples).nonzero()[0]
    else:
        inside = nodes < len(snap.counts)
        nodes = nodes[inside]
        enough = snap.counts[nodes] >= min_samples
        nodes = nodes[enough]
        if limits is not None:
            limits = limits[inside][enough]
    if nodes.size == 0:
        return []
    qs = quantiles(snap.histograms[nodes], _QUANTILES)
    if limits is not None:
        # The conditions of _breaches (NaN limits compare False, like absent ones).
        over = (qs > limits[:, :3]).any(axis=1)
        over |= snap.errors[nodes] / snap.counts[nodes] > limits[:, 3]
        nodes, qs = nodes[over], qs[over]
    findings: list[WindowFinding] = []
    for i, node in enumerate(nodes.tolist()):
        n, errors = int(snap.counts[node]), int(snap.errors[node])
        hist = snap.histograms[node]
        budget = budgets.get(node)
        breaches = _breaches(budget, hist, qs[i], n, errors) if budget is not None else ()
        findings.append(
            WindowFinding(
                node=node,
                start_ns=snap.start_ns,
                end_ns=snap.end_ns,
                samples=n,
                errors=errors,
                p50_ms=float(qs[i, 0]),
                p95_ms=float(qs[i, 1]),
                p99_ms=float(qs[i, 2]),
                error_ratio=errors / n,
                breaches=breaches,
                score=max((b.score for b in breaches), default=0.0),
            )
        )
    return findings


def _breaches(budget: BudgetEntry, hist: I64, q: F64, n: int, errors: int) -> tuple[Breach, ...]:
    found: list[Breach] = []
    for measure, limit, observed, allowed in (
        ("p50_ms", budget.p50_ms, float(q[0]), 0.5),
        ("p95_ms", budget.p95_ms, float(q[1]), 0.05),
        ("p99_ms", budget.p99_ms, float(q[2]), 0.01),
    ):
        if limit is not None and observed > limit:
            above = fraction_above(hist, limit)
            score = breach_score(observed, limit, above, allowed, n)
            p = binomial_tail(round(above * n), n, allowed)
            found.append(Breach(LATENCY_BUDGET, measure, observed, limit, score, p))
    rate = budget.error_rate
    if rate is not None and errors / n > rate:
        score = breach_score(errors / n, rate, errors / n, rate, n)
        p = binomial_tail(errors, n, rate)
        found.append(Breach(ERROR_BUDGET, "error_rate", errors / n, rate, score, p))
    return tuple(sorted(found, key=lambda b: -b.score))


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact to rounding, in O(sqrt(n)) vectorised steps.

    Terms are summed in log space outward from ``k`` (upward when ``k`` is above the mean,
    else the complement downward), over ``12 sd + 64`` terms: the rest is below 1e-30.
    """
    if k <= 0:
        return 1.0
    if k > n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return 1.0
    span = int(12.0 * math.sqrt(n * p * (1.0 - p))) + 64
    upper = k > n * p
    first = k if upper else k - 1
    last = min(n, first + span) if upper else max(0, first - span)
    log_first = (math.lgamma(n + 1) - math.lgamma(first + 1) - math.lgamma(n - first + 1)
                 + first * math.log(p) + (n - first) * math.log1p(-p))  # fmt: skip
    # log t(i+1) - log t(i) = log((n - i) / (i + 1)) + log(p / (1 - p))
    odds = math.log(p) - math.log1p(-p)
    if upper:
        i = np.arange(first, last, dtype=np.float64)
        steps = np.log((n - i) / (i + 1.0)) + odds
    else:
        i = np.arange(first, last, -1, dtype=np.float64)
        steps = np.log(i / (n - i + 1.0)) - odds
    logs = log_first + np.concatenate(([0.0], np.cumsum(steps)))
    total = float(np.exp(logs).sum())
    return min(total, 1.0) if upper else min(max(1.0 - total, 0.0), 1.0)


def breach_score(observed: float, budget: float, above: float, allowed: float, n: int) -> float:
    """Severity (how far over budget) times confidence (how many standard errors clear)."""
    if observed <= budget or n <= 0:
        return 0.0
    severity = 1.0 - budget / observed if observed > 0 else 0.0
    variance = max(allowed, 0.5 / n) * max(1.0 - allowed, 0.5 / n) / n
    z = (above - allowed) / math.sqrt(variance)
    confidence = min(max(z / Z_FULL_CONFIDENCE, 0.0), 1.0)
    return float(min(max(severity * confidence, 0.0), 1.0))


def metric_bounds(entries: Sequence[MetricEntry | None]) -> tuple[F64, F64]:
    """Per-metric-code (min, max) arrays from index entries; NaN where a bound is absent."""
    lo = np.array([np.nan if e is None or e.min is None else e.min for e in entries], np.float64)
    hi = np.array([np.nan if e is None or e.max is None else e.max for e in entries], np.float64)
    return lo, hi


def metric_range(value: F64, metric: I32, lo: F64, hi: F64) -> Bools:
    """Rows whose value is outside its metric's [min, max] (unknown metric or NaN: not flagged)."""
    v = np.asarray(value, np.float64)
    m = np.asarray(metric, np.int64)
    known = (m >= 0) & (m < lo.shape[0]) & np.isfinite(v)
    idx = np.where(known, m, 0)
    if lo.shape[0] == 0:
        return np.zeros(v.shape, np.bool_)
    outside: Bools = known & ((v < lo[idx]) | (v > hi[idx]))
    return outside
