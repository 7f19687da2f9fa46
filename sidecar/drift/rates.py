"""Rate checks in the engine: latency and error budgets over sliding windows, baseline shift.

Rows are keyed by *series*: (spec node, service.name, side), side being ``own`` for the span
that implements the operation and ``call`` for the calling side (client/producer spans). Both
matter: a network delay or a starved callee shows only on the caller's side (the Online
Boutique cart and currency faults). Budgets apply to ``own`` series, as the spec states them
for the operation; the learned baseline covers both.

A batch is stepped through in event time, bucket by bucket; after each bucket the current
window is evaluated. A budget counts as breached when the excess is significant (the binomial
tail of the window's errors, or of its samples over a latency budget, under the budget's
allowance is below ``alpha``); a shift when the baseline comparison scores at alert strength.
A flagged window does not mark all of its rows: the *episode* inside it (located by
:mod:`sidecar.drift.episodes`: the maximum-likelihood stretch where the judged series' rows
break the budget or leave the baseline more often than normal) is marked, on every series of
the node (its own spans and the calls to it). "Normal" is the learned baseline's share when
there is one, else the budget's allowance.

Kinds: where a budget is breached the kind is ``latency_budget`` / ``error_budget``, and no
baseline shift of the node is reported on top of it. A shift whose episode breaks the node's
budget in the shifted aspect (the error ratio rose over the error budget) is that budget's
kind: the baseline shows early *that* the operation changed, the budget that it is too much.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.correlate.row_kernels import unique_rows
from sidecar.drift.baseline import (
    BaselineLearner,
    BaselineProfile,
    NodeBaseline,
    ShiftFinding,
    compare,
)
from sidecar.drift.budgets import WindowFinding, budget_limits, evaluate_snapshot
from sidecar.drift.episodes import KINDS, BatchRows, Episode, Offending
from sidecar.drift.histograms import fraction_above
from sidecar.drift.span_checks import CheckContext, Finding
from sidecar.drift.windows import WindowSnapshot, WindowState
from sidecar.evidence.batch import Signal, SpanKind, Status
from sidecar.spec_index.index import BudgetEntry

#: Kinds of the calling side (client, producer), as a lookup table over kind codes.
_CALLING = np.zeros(256, np.int64)
_CALLING[[SpanKind.CLIENT, SpanKind.PRODUCER]] = 1
#: A baseline shift marks items only at alert strength; weaker shifts stay in the report's
#: rate findings.
SHIFT_MARK = 0.70
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class RateSettings:
    """Window geometry and thresholds (defaults: 5-minute windows of 1-minute buckets)."""

    bucket_s: float = 60.0
    window_s: float = 300.0
    min_samples: int = 30
    max_series: int = 4096
    baseline_tolerance: float = 1.25
    #: A budget breach is acted on (marked, reported) when a window keeping the budget would
    #: look this bad with at most this probability (the binomial tail).
    alpha: float = 0.001


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
    #: Series codes by (node label code, service, calling side), for these labels.
    _series_of: dict[tuple[int, str, int], int] = field(default_factory=dict)
    _series_labels: object = None
    _windows: WindowState | None = None
    _budget_key: tuple[int, int] = (0, -1)
    _budget_cache: dict[int, BudgetEntry] = field(default_factory=dict)
    _budget_nodes: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    _budget_limits: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros((0, 4)))

    def __post_init__(self) -> None:
        s = self.settings
        self._windows = WindowState(bucket_s=s.bucket_s, window_s=s.window_s,
                                    min_samples=s.min_samples, max_nodes=s.max_series)  # fmt: skip

    def _series_codes(
        self, ctx: CheckContext, rows: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int32]:
        b, cols, labels = ctx.batch, ctx.cols, ctx.correlator.labels
        calling = _CALLING[b.kind[rows].view(np.uint8)]
        key = (cols.node[rows].astype(np.int64) << 32) | (b.service[rows].astype(np.int64) << 1)
        key |= calling
        first, inverse = unique_rows(key)
        codes = np.empty(len(first), np.int32)
        if self._series_labels is not labels:  # node codes are the labels' codes
            self._series_of, self._series_labels = {}, labels
        pool = b.pool.values
        for i, k in enumerate(key[first].tolist()):
            # Known series by (node code, service, side): no name is built for them.
            ident = (k >> 32, pool[(k >> 1) & 0x7FFFFFFF], k & 1)
            code = self._series_of.get(ident)
            if code is None:
                name = f"{labels[k >> 32]}|{ident[1]}|{'call' if k & 1 else 'own'}"
                code = self._series_of[ident] = self._series.setdefault(name, len(self.series_ids))
                if code == len(self.series_ids):
                    self.series_ids.append(name)
            codes[i] = code
        out: npt.NDArray[np.int32] = codes[inverse]
        return out

    def check(self, ctx: CheckContext, exclude: npt.NDArray[np.bool_] | None = None
              ) -> list[Finding]:  # fmt: skip
        """Observe the batch's spans window by window; findings mark rows in flagged windows.

        ``exclude``: rows that are no sample of their series (attempts their caller retried
        within the limit: the call is its last attempt).
        """
        b, cols = ctx.batch, ctx.cols
        assert self._windows is not None
        batch = BatchRows(len(b))
        keep = (b.signal == Signal.SPAN) & (cols.node != 0) & ~cols.ignored
        keep &= b.end_ns >= b.start_ns
        if exclude is not None:
            keep &= ~exclude
        rows = keep.nonzero()[0]
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
        key = (id(ctx.index), len(self.series_ids))
        if self._budget_key == key:
            return self._budget_cache
        out: dict[int, BudgetEntry] = {}
        for code, name in enumerate(self.series_ids):
            node, _, side = name.split("|")
            op = ctx.index.operations.get(node)
            if side == "own" and op is not None and op.budget is not None:
                out[code] = op.budget
        self._budget_key, self._budget_cache = key, out
        self._budget_nodes = np.array(sorted(out), np.int64)
        self._budget_limits = budget_limits([out[c] for c in sorted(out)])
        return out

    def _step(self, ctx: CheckContext, batch: BatchRows) -> None:
        windows = self._windows
        assert windows is not None
        budgets = self._budgets(ctx)
        bucket = batch.t // windows.bucket_ns
        bounds = np.concatenate(([True], bucket[1:] != bucket[:-1], [True])).nonzero()[0]
        for lo, hi in itertools.pairwise(bounds.tolist()):
            windows.observe(batch.series[lo:hi], batch.t[lo:hi], batch.dur[lo:hi],
                            batch.err[lo:hi])  # fmt: skip
            snap = windows.snapshot()
            found: list[WindowFinding] = []
            if snap is not None:
                # Every series with enough samples is evaluated; only budgeted ones can breach.
                self.evaluated.update((snap.counts >= windows.min_samples).nonzero()[0].tolist())
                found = evaluate_snapshot(
                    snap, budgets, windows.min_samples, self._budget_nodes, self._budget_limits
                )
            breached = self._judge_budgets(batch, found)
            if self.baseline is not None and snap is not None:
                self._judge_shifts(batch, snap, budgets, breached)

    def _judge_budgets(self, batch: BatchRows, found: list[WindowFinding]) -> set[int]:
        """Mark and record significant budget breaches; the series of the nodes breached."""
        breached: set[int] = set()
        for f in found:
            self.evaluated.add(f.node)
            for br in f.breaches:
                if br.p_value >= self.settings.alpha:
                    continue  # within the noise of a window that keeps its budget
                kind = "error_budget" if br.measure == "error_rate" else "latency_budget"
                siblings = self._siblings(f.node)
                breached.update(siblings)
                offending, allowed = _budget_test(br.measure, br.budget)
                allowed = min(allowed, self._normal_share(f.node, br.measure, br.budget, allowed))
                ep = batch.episode(f.node, (f.start_ns, f.end_ns), offending, allowed)
                if ep is not None:
                    batch.mark(kind, siblings, (ep.start_ns, ep.end_ns), br.score)
                self._record(kind, f.node, (f.start_ns, f.end_ns), br.score,
                             f"{br.measure} {br.observed:.4g} > {br.budget:.4g} "
                             f"(p {br.p_value:.2g})")  # fmt: skip
        return breached

    def _normal_share(self, series: int, measure: str, limit: float, allowed: float) -> float:
        """The share of the series' baseline rows that break a budget (normal behaviour)."""
        base = self.baseline.nodes.get(self.series_ids[series]) if self.baseline else None
        if base is None:
            return allowed
        if measure == "error_rate":
            return max(base.errors, 0.5) / base.samples
        return max(fraction_above(base.dense(), limit), 0.5 / base.samples)

    def _judge_shifts(self, batch: BatchRows, snap: WindowSnapshot,
                      budgets: dict[int, BudgetEntry], breached: set[int]) -> None:  # fmt: skip
        """Mark and record baseline shifts; a shift whose episode breaks a budget is that
        budget's kind (the baseline shows *that* it changed, the budget that it is too much)."""
        assert self.baseline is not None
        shifts: list[tuple[ShiftFinding, Episode | None, str]] = []
        for sf in compare(self.baseline, snap, self.series_ids,
                          min_samples=self.settings.min_samples,
                          tolerance=self.settings.baseline_tolerance):  # fmt: skip
            if sf.aspect == "latency_faster" or sf.node in breached:
                continue  # faster is not a regression; a breached budget already says it
            base = self.baseline.nodes[self.series_ids[sf.node]]
            offending, allowed = _shift_test(sf.aspect, base, self.settings.baseline_tolerance)
            ep = batch.episode(sf.node, (sf.start_ns, sf.end_ns), offending, allowed)
            budget = budgets.get(sf.node)
            kind = ep.breaks(budget, sf.aspect) if ep is not None and budget is not None else None
            if kind is not None and sf.score >= SHIFT_MARK:
                breached.update(self._siblings(sf.node))
            shifts.append((sf, ep, kind or "baseline_shift"))
        for sf, ep, kind in shifts:
            if kind == "baseline_shift" and sf.node in breached:
                continue  # the other side of this node breaks its budget
            if ep is not None and sf.score >= SHIFT_MARK:
                batch.mark(kind, self._siblings(sf.node), (ep.start_ns, ep.end_ns), sf.score)
            self._record(kind, sf.node, (sf.start_ns, sf.end_ns), sf.score,
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


_ALLOWED_ABOVE = {"p50_ms": 0.5, "p95_ms": 0.05, "p99_ms": 0.01}


def _budget_test(measure: str, budget: float) -> tuple[Offending, float]:
    """Which rows break a budget, and the share of rows the budget allows to."""
    if measure == "error_rate":
        return (lambda dur, err: err), budget
    return (lambda dur, err: dur > budget), _ALLOWED_ABOVE.get(measure, 0.05)


def _shift_test(aspect: str, base: NodeBaseline, tolerance: float) -> tuple[Offending, float]:
    """Which rows show a shift, and the share of the baseline's rows that did."""
    if aspect == "error_ratio":
        return (lambda dur, err: err), max(base.errors, 0.5) / base.samples
    slow = base.p50_ms * tolerance
    return (lambda dur, err: dur > slow), fraction_above(base.dense(), slow)
