"""Where a flagged rate window shows its drift: the episode, and the batch rows it marks.

A window breaching a budget or leaving the baseline does not mark all of its rows. The rows
of the batch (:class:`BatchRows`: span rows in time order, their series, and per kind the
mask and score columns of the findings) are searched for the *episode* (:func:`episode`, the
maximum-likelihood stretch where the judged series' rows offend more often than normal), and
only the rows of the node inside it are marked.

Separate from :mod:`sidecar.drift.rates`, which decides *whether* a window is flagged (window
state, budgets, baseline shifts) and keeps the findings: this module is only the localisation
inside a flagged window, a scan statistic that needs no tracker state.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sidecar.spec_index.index import BudgetEntry

#: Kinds of rate findings: the batch rows keep a mask and a score column per kind.
KINDS = ("latency_budget", "error_budget", "baseline_shift")
#: Per row of the judged series: does this row show the drift (an error, slower than the
#: budget, slower than the tolerated baseline median)?
Offending = Callable[[npt.NDArray[np.float64], npt.NDArray[np.bool_]], npt.NDArray[np.bool_]]
I64 = npt.NDArray[np.int64]
_QUANTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}


@dataclass(frozen=True, slots=True)
class Episode:
    """Where a flagged window shows its drift: a time span and the judged rows inside it."""

    start_ns: int
    end_ns: int
    dur: npt.NDArray[np.float64]
    err: npt.NDArray[np.bool_]

    def breaks(self, budget: BudgetEntry, aspect: str) -> str | None:
        """The budget kind the episode's own rows break in the shifted aspect, if any."""
        if aspect == "error_ratio":
            rate = budget.error_rate
            return "error_budget" if rate is not None and self.err.mean() > rate else None
        for measure, q in _QUANTILES.items():
            limit = getattr(budget, measure)
            if limit is not None and float(np.percentile(self.dur, q)) > limit:
                return "latency_budget"
        return None


@dataclass(slots=True)
class BatchRows:
    """The batch's span rows in time order, their series, and the findings' row columns."""

    n: int
    rows: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    series: npt.NDArray[np.int32] = field(default_factory=lambda: np.zeros(0, np.int32))
    t: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    dur: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    err: npt.NDArray[np.bool_] = field(default_factory=lambda: np.zeros(0, np.bool_))
    masks: dict[str, npt.NDArray[np.bool_]] = field(default_factory=dict)
    scores: dict[str, npt.NDArray[np.float32]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.masks = {k: np.zeros(self.n, np.bool_) for k in KINDS}
        self.scores = {k: np.zeros(self.n, np.float32) for k in KINDS}

    def episode(self, judged: int, window: tuple[int, int], offending: Offending,
                allowed: float) -> Episode | None:  # fmt: skip
        """The stretch of a window where the judged series shows the drift, if it does.

        The stretch is the maximum-likelihood episode (:func:`episode`) over the judged
        series' rows of the window, in time order. It is bounded halfway between its first
        row and the row before it, and between its last row and the row after, so the calls
        to an execution (which start a moment before it) go with it.
        """
        rows = (self.series == judged).nonzero()[0]  # time order: the batch rows are sorted
        t = self.t[rows]
        first, stop = np.searchsorted(t, window[0]), np.searchsorted(t, window[1])
        if first >= stop:
            return None
        found = episode(offending(self.dur[rows[first:stop]], self.err[rows[first:stop]]),
                        allowed)  # fmt: skip
        if found is None:
            return None
        a, b = first + found[0], first + found[1]
        lo = window[0] if a == 0 else max(window[0], (int(t[a - 1]) + int(t[a])) // 2 + 1)
        hi = window[1] if b + 1 >= len(t) else min(window[1], (int(t[b]) + int(t[b + 1])) // 2 + 1)
        return Episode(lo, hi, self.dur[rows[a : b + 1]], self.err[rows[a : b + 1]])

    def mark(self, kind: str, series: list[int], window: tuple[int, int], score: float) -> None:
        """Flag the rows of the series inside a window (keeping the strongest score)."""
        t = self.t
        inside = np.isin(self.series, np.asarray(series, np.int32))
        hit = self.rows[inside & (t >= window[0]) & (t < window[1])]
        self.masks[kind][hit] = True
        self.scores[kind][hit] = np.maximum(self.scores[kind][hit], np.float32(score))


def episode(offending: npt.NDArray[np.bool_], allowed: float) -> tuple[int, int] | None:
    """First and last row of the most likely episode of drift in a run of rows, if any.

    Each row scores the log-likelihood ratio of "in an episode" (offending at the episode's
    rate ``q``) against "normal" (offending at the ``allowed`` rate ``a``): ``log(q/a)`` when
    it offends, ``log((1-q)/(1-a))`` when it does not. For a given ``q`` the episode is the
    contiguous stretch with the largest total (the maximum-sum segment). The stretch and its
    rate are estimated together, as in Kulldorff's scan statistic, by coordinate ascent:
    start from the run's own rate, take the best stretch, set ``q`` to that stretch's rate
    (with a half-count either side, so an all-offending stretch does not make one quiet row
    inside it infinitely unlikely), and again until the stretch stays put. The episode starts
    and ends on offending rows and takes in quiet rows between them while the offending rows
    around outweigh them. None when the run does not offend more often than allowed.
    """
    x = np.asarray(offending, np.bool_)
    if x.size == 0 or float(x.mean()) <= allowed:
        return None
    a = min(max(allowed, 1e-9), 1 - 1e-9)
    q = (float(x.sum()) + 0.5) / (x.size + 1)
    found: tuple[int, int] | None = None
    for _ in range(_EPISODE_ROUNDS):
        if q <= a:
            break
        best = _best_stretch(x, math.log(q / a), math.log((1 - q) / (1 - a)))
        if best is None or best == found:
            break
        found = best
        k, m = int(x[best[0] : best[1] + 1].sum()), best[1] - best[0] + 1
        q = (k + 0.5) / (m + 1)
    return found


#: Coordinate-ascent rounds of :func:`episode` (it settles in two or three).
_EPISODE_ROUNDS = 8


def _best_stretch(x: npt.NDArray[np.bool_], hit: float, miss: float) -> tuple[int, int] | None:
    """The maximum-sum contiguous stretch of rows scoring ``hit`` or ``miss`` (positive sum)."""
    prefix = np.concatenate(([0.0], np.cumsum(np.where(x, hit, miss))))
    gain = prefix[1:] - np.minimum.accumulate(prefix)[:-1]
    last = int(np.argmax(gain))
    if gain[last] <= 0:
        return None
    # The latest start of the best total: a stretch that adds nothing is not part of it.
    return last - int(np.argmin(prefix[last::-1])), last
