"""Judging a window against the spec's budgets: breaches, their score and significance.

:func:`evaluate_snapshot` turns a merged window (:class:`sidecar.drift.windows.WindowSnapshot`)
into per-node statistics (p50/p95/p99 from the histograms, error ratio) and the latency and
error budgets each node breaches. Separate from :mod:`sidecar.drift.windows`, which only keeps
the window state: this is the statistics of deciding that a window is over budget, shared by
the windows, the rate tracker (:mod:`sidecar.drift.rates`) and the baseline comparison
(:func:`binomial_tail`). :func:`metric_bounds` / :func:`metric_range` test metric values
against their declared ranges, the same kind of check against a spec-declared limit.

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
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from sidecar.drift.histograms import fraction_above, quantiles
from sidecar.spec_index.index import BudgetEntry, MetricEntry

if TYPE_CHECKING:
    from sidecar.drift.windows import WindowSnapshot

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

LATENCY_BUDGET = "latency_budget"
ERROR_BUDGET = "error_budget"
#: Standard errors of excess over the allowance at which a breach gets full confidence.
Z_FULL_CONFIDENCE = 3.0
_QUANTILES = (0.5, 0.95, 0.99)


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
