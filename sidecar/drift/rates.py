"""Rate checks in the engine: latency and error budgets over sliding windows, baseline shift.

Rows are keyed by *series*: (spec node, service.name, side), side being ``own`` for the span
that implements the operation and ``call`` for the calling side (client/producer spans). Both
matter: a network delay or a starved callee shows only on the caller's side (the Online
Boutique cart and currency faults). Budgets apply to ``own`` series, as the spec states them
for the operation; the learned baseline covers both.

A batch is stepped through in event time, bucket by bucket; after each bucket the current
window is evaluated and, when a series is flagged, every span of that spec node inside the
window (its own spans and the calls to it) is marked. Where a
budget is breached the kind is ``latency_budget`` / ``error_budget``, and a baseline shift of
the same series in the same window is not reported on top of it.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.drift.baseline import BaselineLearner, BaselineProfile, compare
from sidecar.drift.span_checks import CheckContext, Finding
from sidecar.drift.windows import WindowState
from sidecar.evidence.batch import Signal, SpanKind, Status
from sidecar.spec_index.index import BudgetEntry

KINDS = ("latency_budget", "error_budget", "baseline_shift")
#: A baseline shift marks items only at alert strength; weaker shifts (a few benign retries
#: over a zero-error baseline score ~0.6) stay in the report's rate findings.
SHIFT_MARK = 0.70
#: A bucket is judged on its own rows only with at least this many of them.
MIN_BUCKET_ROWS = 3
BucketTest = Callable[[npt.NDArray[np.float64], npt.NDArray[np.bool_]], bool]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class RateSettings:
    """Window geometry and thresholds (defaults: 5-minute windows of 1-minute buckets)."""

    bucket_s: float = 60.0
    window_s: float = 300.0
    min_samples: int = 30
    max_series: int = 4096
    baseline_tolerance: float = 1.25


@dataclass(slots=True)
class _BatchRows:
    """The batch's span rows in time order, their series, and the findings' row columns."""

    n: int
    rows: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    series: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    t: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    dur: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    err: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    masks: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    scores: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)
    bucket_ns: int = 60_000_000_000

    def __post_init__(self) -> None:
        self.masks = {k: np.zeros(self.n, np.bool_) for k in KINDS}
        self.scores = {k: np.zeros(self.n, np.float32) for k in KINDS}

    def mark_buckets(self, kind: str, judged: int, *, series: list[int],
                     window: tuple[int, int], score: float, test: BucketTest) -> None:  # fmt: skip
        """Mark, bucket by bucket inside the window, the buckets whose judged rows fail ``test``.

        A sliding window is flagged from the bucket where a breach becomes significant until
        the breach has slid out; judging each bucket on its own rows marks the buckets that
        really show it, before and after.
        """
        inside = (self.t >= window[0]) & (self.t < window[1])
        own = inside & (self.series == judged)
        buckets = self.t // self.bucket_ns
        passing = [
            b for b in np.unique(buckets[own]).tolist()
            if int((own & (buckets == b)).sum()) >= MIN_BUCKET_ROWS
            and test(self.dur[own & (buckets == b)], self.err[own & (buckets == b)])
        ]  # fmt: skip
        if not passing:
            return
        # Buckets between two that show the breach belong to it, even if too few of their
        # own calls happened to fail or be slow.
        lo = max(passing[0] * self.bucket_ns, window[0])
        hi = min((passing[-1] + 1) * self.bucket_ns, window[1])
        self.mark(kind, series, (lo, hi), score)

    def mark(self, kind: str, series: list[int], window: tuple[int, int], score: float) -> None:
        """Flag the rows of the series inside a window (keeping the strongest score)."""
        t = self.t
        inside = np.isin(self.series, np.asarray(series, np.int32))
        hit = self.rows[inside & (t >= window[0]) & (t < window[1])]
        self.masks[kind][hit] = True
        self.scores[kind][hit] = np.maximum(self.scores[kind][hit], np.float32(score))


@dataclass(slots=True)
class RateTracker:
    """Windows per series, an optional baseline to compare with, an optional learner."""

    settings: RateSettings = field(default_factory=RateSettings)
    baseline: BaselineProfile | None = None
    learner: BaselineLearner | None = None
    series_ids: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    #: Series that reached the minimum sample size in some window (were judged at all).
    evaluated: set[int] = field(default_factory=set)
    _series: dict[str, int] = field(default_factory=dict)
    _windows: WindowState | None = None

    def __post_init__(self) -> None:
        s = self.settings
        self._windows = WindowState(bucket_s=s.bucket_s, window_s=s.window_s,
                                    min_samples=s.min_samples, max_nodes=s.max_series)  # fmt: skip

    def _series_codes(
        self, ctx: CheckContext, rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int32]:
        b, cols, labels = ctx.batch, ctx.cols, ctx.correlator.labels
        calling = np.isin(b.kind[rows], np.array([SpanKind.CLIENT, SpanKind.PRODUCER], np.int8))
        key = (cols.node[rows].astype(np.int64) << 32) | (b.service[rows].astype(np.int64) << 1)
        key |= calling.astype(np.int64)
        uniq, inverse = np.unique(key, return_inverse=True)
        codes = np.empty(len(uniq), np.int32)
        for i, k in enumerate(uniq.tolist()):
            name = (f"{labels[k >> 32]}|{b.pool[(k >> 1) & 0x7FFFFFFF]}|"
                    f"{'call' if k & 1 else 'own'}")  # fmt: skip
            code = self._series.get(name)
            if code is None:
                code = self._series[name] = len(self.series_ids)
                self.series_ids.append(name)
            codes[i] = code
        out: npt.NDArray[np.int32] = codes[inverse.reshape(-1)]
        return out

    def check(self, ctx: CheckContext) -> list[Finding]:
        """Observe the batch's spans window by window; findings mark rows in flagged windows."""
        b, cols = ctx.batch, ctx.cols
        assert self._windows is not None
        batch = _BatchRows(len(b), bucket_ns=self._windows.bucket_ns)
        rows = np.flatnonzero((b.signal == Signal.SPAN) & (cols.node != 0) & ~cols.ignored
                              & (b.end_ns >= b.start_ns))  # fmt: skip
        if len(rows):
            rows = rows[np.argsort(b.start_ns[rows], kind="stable")]
            batch.rows, batch.series = rows, self._series_codes(ctx, rows)
            batch.t = b.start_ns[rows]
            batch.dur = (b.end_ns[rows] - batch.t).astype(np.float64) / 1e6
            batch.err = b.status[rows] == Status.ERROR
            if self.learner is not None:
                self.learner.observe(batch.series, batch.t, batch.dur, batch.err)
            self._step(ctx, batch)
        return [(k, batch.masks[k], batch.scores[k]) for k in KINDS]

    def _budgets(self, ctx: CheckContext) -> dict[int, BudgetEntry]:
        out: dict[int, BudgetEntry] = {}
        for code, name in enumerate(self.series_ids):
            node, _, side = name.split("|")
            op = ctx.index.operations.get(node)
            if side == "own" and op is not None and op.budget is not None:
                out[code] = op.budget
        return out

    def _step(self, ctx: CheckContext, batch: _BatchRows) -> None:
        windows = self._windows
        assert windows is not None
        budgets = self._budgets(ctx)
        bucket = batch.t // windows.bucket_ns
        bounds = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1], True])
        for lo, hi in itertools.pairwise(bounds.tolist()):
            windows.observe(batch.series[lo:hi], batch.t[lo:hi], batch.dur[lo:hi],
                            batch.err[lo:hi])  # fmt: skip
            breached: set[int] = set()
            for f in windows.evaluate(budgets):
                self.evaluated.add(f.node)
                for br in f.breaches:
                    kind = "error_budget" if br.measure == "error_rate" else "latency_budget"
                    breached.update(self._siblings(f.node))
                    window = (f.start_ns, f.end_ns)
                    batch.mark_buckets(kind, f.node, series=self._siblings(f.node),
                                       window=window, score=br.score,
                                       test=_budget_test(br.measure, br.budget))  # fmt: skip
                    self._record(kind, f.node, (f.start_ns, f.end_ns), br.score,
                                 f"{br.measure} {br.observed:.4g} > {br.budget:.4g}")  # fmt: skip
            snap = windows.snapshot()
            if self.baseline is None or snap is None:
                continue
            for sf in compare(self.baseline, snap, self.series_ids,
                              min_samples=self.settings.min_samples,
                              tolerance=self.settings.baseline_tolerance):  # fmt: skip
                if sf.aspect == "latency_faster" or sf.node in breached:
                    continue  # faster is not a regression; a breached budget already says it
                if sf.score >= SHIFT_MARK:
                    base = self.baseline.nodes[self.series_ids[sf.node]]
                    test = _shift_test(sf.aspect, base.p50_ms * self.settings.baseline_tolerance,
                                       base.errors / max(base.samples, 1))  # fmt: skip
                    batch.mark_buckets("baseline_shift", sf.node, series=self._siblings(sf.node),
                                       window=(sf.start_ns, sf.end_ns), score=sf.score,
                                       test=test)  # fmt: skip
                self._record("baseline_shift", sf.node, (sf.start_ns, sf.end_ns), sf.score,
                             f"{sf.aspect}: p95 {sf.current:.4g} vs {sf.baseline:.4g}")  # fmt: skip

    def _siblings(self, series: int) -> list[int]:
        """Every series of the same spec node (its own spans and the calls to it)."""
        node = self.series_ids[series].split("|", 1)[0]
        return [c for c, name in enumerate(self.series_ids) if name.split("|", 1)[0] == node]

    def _record(self, kind: str, series: int, window: tuple[int, int], score: float,
                detail: str) -> None:  # fmt: skip
        node, service, side = self.series_ids[series].split("|")
        start, end = window
        key = (kind, node, service, side, start)
        last = self.findings[-1] if self.findings else None
        if last is not None and last["_key"] == key and last["score"] >= score:
            return
        self.findings.append({"_key": key, "kind": kind, "spec_node_id": node,
                              "service": service, "side": side, "window_start_ns": start,
                              "window_end_ns": end, "score": round(score, 4),
                              "detail": detail})  # fmt: skip

    def blame(self, owners: dict[str, tuple[str, ...]], spec_calls: dict[str, tuple[str, ...]],
              alert: float = 0.70) -> list[tuple[str, float]]:  # fmt: skip
        """Services ranked by the strongest rate finding blamed on them.

        A finding on a calling-side series (service A calling node N owned by service B) is
        blamed on A when at least half of A's other judged calling series (towards other
        services) are flagged too - a slow caller slows every call it makes - else on B, the
        callee or the link to it. A finding on an operation's own spans is blamed on the
        service of a flagged operation it is specified to call (a slow callee slows its
        callers), else on its own service.
        """
        flagged: dict[str, float] = {}
        for f in self.findings:
            key = f"{f['spec_node_id']}|{f['service']}|{f['side']}"
            if f["score"] >= alert:
                flagged[key] = max(flagged.get(key, 0.0), f["score"])
        calls: dict[str, list[tuple[str, str]]] = {}
        for code in self.evaluated:
            node, service, side = self.series_ids[code].split("|")
            if side == "call":
                calls.setdefault(service, []).append((self.series_ids[code], node))
        own_flagged = {k.split("|")[0]: v for k, v in flagged.items() if k.endswith("|own")}
        scores: dict[str, float] = {}
        for key, score in flagged.items():
            node, service, side = key.split("|")
            callees = owners.get(node, ())
            blamed = service
            slow_callees = [
                c for c in spec_calls.get(node, ()) if c in own_flagged and owners.get(c)
            ]
            if side == "own" and slow_callees:
                blamed = owners[max(slow_callees, key=lambda c: own_flagged[c])][0]
            if side == "call" and callees and service not in callees:
                others = [k for k, n in calls.get(service, []) if not set(owners.get(n, ())) &
                          set(callees)]  # fmt: skip
                widespread = bool(others) and sum(k in flagged for k in others) >= len(others) / 2
                blamed = service if widespread else callees[0]
            scores[blamed] = max(scores.get(blamed, 0.0), score)
        return sorted(scores.items(), key=lambda kv: -kv[1])

    def report(self, top: int = 50) -> list[dict[str, Any]]:
        """The strongest finding per (kind, series), strongest first."""
        best: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        for f in self.findings:
            k = (f["kind"], f["spec_node_id"], f["service"], f["side"])
            if k not in best or f["score"] > best[k]["score"]:
                best[k] = f
        ranked = sorted(best.values(), key=lambda f: -f["score"])[:top]
        return [{k: v for k, v in f.items() if k != "_key"} for f in ranked]


_QUANTILE = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}


def _budget_test(measure: str, budget: float) -> BucketTest:
    """Does a bucket's own rows break this budget?"""
    if measure == "error_rate":
        return lambda dur, err: _binomial_tail(int(err.sum()), len(err), budget) < 0.1
    q = _QUANTILE.get(measure, 95.0)
    return lambda dur, err: float(np.percentile(dur, q)) > budget


def _shift_test(aspect: str, slow_median_ms: float, base_error_ratio: float) -> BucketTest:
    """Does a bucket's own rows show the shift (median past the tolerated baseline median)?"""
    if aspect == "error_ratio":
        return lambda dur, err: _binomial_tail(int(err.sum()), len(err), base_error_ratio) < 0.05
    return lambda dur, err: float(np.median(dur)) > slow_median_ms


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): how surprising k errors in n calls are at rate p."""
    if k <= 0:
        return 1.0
    p = min(max(p, 1e-9), 1.0)
    return float(sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1)))
