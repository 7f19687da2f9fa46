"""Sliding-window rate checks: histograms, bucket expiry, budgets, bounds and metric ranges."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.drift.budgets import (
    ERROR_BUDGET,
    LATENCY_BUDGET,
    binomial_tail,
    breach_score,
    metric_bounds,
    metric_range,
)
from sidecar.drift.histograms import (
    LATENCY_MAX_MS,
    LATENCY_MIN_MS,
    N_BINS,
    add_counts,
    fraction_above,
    latency_bins,
    quantiles,
)
from sidecar.drift.windows import WindowState
from sidecar.errors import ConfigError
from sidecar.spec_index.index import BudgetEntry, MetricEntry

S = 1_000_000_000
T0 = 1_661_145_000 * S  # a minute boundary


def rows(node: list[int], t_s: list[float], ms: list[float], err: list[bool] | None = None):
    """Aligned engine arrays from plain lists."""
    return (
        np.asarray(node, np.int32),
        T0 + (np.asarray(t_s, np.float64) * S).astype(np.int64),
        np.asarray(ms, np.float64),
        np.asarray(err if err is not None else [False] * len(node), np.bool_),
    )


def test_latency_bins_cover_the_range_and_clip() -> None:
    ms = np.array([np.nan, -1.0, 0.0, 1e-4, LATENCY_MIN_MS, 1.0, 1000.0, LATENCY_MAX_MS, 1e9])
    b = latency_bins(ms)
    assert b.tolist()[:4] == [0, 0, 0, 0]
    assert b[4] == 1 and b[-1] == N_BINS - 1 and b[-2] == N_BINS - 1
    assert np.all(np.diff(b[3:]) >= 0)


def test_quantiles_are_within_the_bin_resolution_of_exact_percentiles() -> None:
    rng = np.random.default_rng(7)
    for sigma in (0.2, 1.0, 2.0):
        d = rng.lognormal(math.log(12.0), sigma, 20_000)
        hist = np.bincount(latency_bins(d), minlength=N_BINS)
        est = quantiles(hist, (0.5, 0.95, 0.99))[0]
        exact = np.percentile(d, [50, 95, 99])
        assert np.all(np.abs(est / exact - 1) < 0.055), (sigma, est, exact)


def test_quantiles_of_empty_rows_are_nan() -> None:
    q = quantiles(np.zeros((2, N_BINS)), (0.5,))
    assert np.isnan(q).all()


def test_fraction_above_interpolates_inside_a_bin() -> None:
    d = np.full(100, 10.0)
    d[:10] = 500.0
    hist = np.bincount(latency_bins(d), minlength=N_BINS)
    assert fraction_above(hist, 100.0) == pytest.approx(0.10)
    assert fraction_above(hist, 1.0) == pytest.approx(1.0)
    assert fraction_above(hist, 1e6) == 0.0
    assert fraction_above(np.zeros(N_BINS), 5.0) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 49), max_size=300))
def test_add_counts_agrees_with_np_add_at(index: list[int]) -> None:
    ours = np.zeros(50, np.int64)
    reference = np.zeros(50, np.int64)
    add_counts(ours, np.asarray(index, np.int64))
    np.add.at(reference, np.asarray(index, np.int64), 1)
    assert ours.tolist() == reference.tolist()


def test_evaluate_reports_statistics_only_from_min_samples() -> None:
    w = WindowState(bucket_s=60, window_s=300, min_samples=30)
    w.observe(*rows([0] * 40 + [1] * 29, [1.0] * 69, [10.0] * 40 + [5.0] * 29))
    found = w.evaluate()
    assert [f.node for f in found] == [0]
    f = found[0]
    assert f.samples == 40 and f.errors == 0 and f.error_ratio == 0.0
    # A point mass is placed within its bin (one bin is 10.6 % wide).
    assert f.p50_ms == pytest.approx(10.0, rel=0.11) and f.p99_ms == pytest.approx(10.0, rel=0.11)
    assert (f.start_ns, f.end_ns) == (T0 - 240 * S, T0 + 60 * S)
    assert f.breaches == () and f.score == 0.0


def test_non_spans_and_uncorrelated_rows_are_ignored() -> None:
    w = WindowState(min_samples=1)
    kept = w.observe(*rows([-1, 0, 0], [0, 0, 0], [5.0, math.nan, 5.0]))
    assert kept == 1
    assert [f.samples for f in w.evaluate()] == [1]


def test_latency_budget_breach_scores_by_ratio_and_sample_size() -> None:
    budget = {0: BudgetEntry(p95_ms=100.0, p99_ms=400.0)}
    small, large = WindowState(min_samples=30), WindowState(min_samples=30)
    # 90 % of requests at 20 ms, 10 % at 300 ms: p95 is three times its budget.
    ms = [20.0] * 9 + [300.0]
    small.observe(*rows([0] * 40, [0] * 40, ms * 4))
    large.observe(*rows([0] * 400, [0] * 400, ms * 40))
    f_small, f_large = small.evaluate(budget)[0], large.evaluate(budget)[0]
    for f in (f_small, f_large):
        assert [b.kind for b in f.breaches] == [LATENCY_BUDGET]
        assert f.breaches[0].measure == "p95_ms"
        assert f.breaches[0].observed == pytest.approx(300.0, rel=0.06)
    # Severity 1 - 100/300 = 0.67. 10 % above the budget where 5 % is allowed: 4.6 standard
    # errors at 400 samples (full confidence), 1.5 at 40 (half).
    assert f_large.score == pytest.approx(1 - 100 / f_large.p95_ms, abs=1e-9)
    assert 0 < f_small.score < f_large.score


def test_error_budget_breach_and_zero_error_budget() -> None:
    w = WindowState(min_samples=30)
    err = [True] * 10 + [False] * 90
    w.observe(*rows([0] * 100 + [1] * 100, [0] * 200, [5.0] * 200, err + [False] * 99 + [True]))
    found = {f.node: f for f in w.evaluate({0: BudgetEntry(error_rate=0.01),
                                             1: BudgetEntry(error_rate=0.0)})}  # fmt: skip
    assert found[0].error_ratio == pytest.approx(0.10)
    assert [b.kind for b in found[0].breaches] == [ERROR_BUDGET]
    assert found[0].score == pytest.approx(0.9)  # 1 - 0.01/0.10 at full confidence
    # One error in 100 against a zero budget is a breach, but a weakly supported one.
    assert [b.kind for b in found[1].breaches] == [ERROR_BUDGET]
    assert 0.3 < found[1].score < 0.7


def test_breach_score_is_monotonic_and_bounded() -> None:
    scores = [breach_score(obs, 100.0, 0.5, 0.05, 200) for obs in (110, 150, 300, 1000, 1e6)]
    assert scores == sorted(scores) and all(0 < s <= 1 for s in scores)
    assert breach_score(90.0, 100.0, 0.5, 0.05, 200) == 0.0
    confidence = [breach_score(300.0, 100.0, 0.08, 0.05, n) for n in (30, 300, 3000)]
    assert confidence == sorted(confidence)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 400), st.floats(0.0005, 0.9995), st.data())
def test_binomial_tail_matches_the_exact_sum(n: int, p: float, data: st.DataObject) -> None:
    k = data.draw(st.integers(0, n + 1))
    # Exact rational arithmetic: float powers go subnormal (p**177 for p = 1/64) and lose digits.
    q = Fraction(p)
    exact = float(sum(math.comb(n, i) * q**i * (1 - q) ** (n - i) for i in range(k, n + 1)))
    assert binomial_tail(k, n, p) == pytest.approx(exact, rel=1e-7, abs=1e-250)


def test_breaches_carry_their_significance() -> None:
    """One error in 30 calls (3.3 %) exceeds a 1 % budget but happens to 26 % of the windows
    that keep it; 10 in 100 against 1 % is beyond doubt."""
    w = WindowState(min_samples=30)
    w.observe(*rows([0] * 30 + [1] * 100, [0] * 130, [5.0] * 130,
                    [True] + [False] * 29 + [True] * 10 + [False] * 90))  # fmt: skip
    found = {f.node: f for f in w.evaluate({0: BudgetEntry(error_rate=0.01),
                                             1: BudgetEntry(error_rate=0.01)})}  # fmt: skip
    assert found[0].breaches[0].p_value == pytest.approx(1 - 0.99**30)
    assert found[1].breaches[0].p_value < 1e-6


def test_old_buckets_expire_and_late_rows_are_dropped() -> None:
    w = WindowState(bucket_s=10, window_s=30, min_samples=1)
    w.observe(*rows([0] * 5, [1] * 5, [1.0] * 5))
    w.observe(*rows([0] * 3, [25] * 3, [2.0] * 3))
    assert w.evaluate()[0].samples == 8
    w.observe(*rows([0], [41], [3.0]))  # window is now [20, 50): the first bucket expired
    assert w.evaluate()[0].samples == 4
    w.observe(*rows([0, 0], [5, 22], [1.0, 1.0]))  # t=5 is too late, t=22 is in the window
    assert (w.dropped_late, w.evaluate()[0].samples) == (1, 5)
    w.observe(*rows([0], [500], [1.0]))  # a jump longer than the window clears everything
    assert w.evaluate()[0].samples == 1


def test_future_rows_beyond_the_horizon_are_dropped() -> None:
    w = WindowState(bucket_s=10, window_s=30, min_samples=1)
    node, t, d, e = rows([0, 0], [1, 10_000], [1.0, 1.0])
    w.observe(node, t, d, e, horizon_ns=T0 + 60 * S)
    assert w.dropped_future == 1 and w.evaluate()[0].samples == 1


def columns(items: list[tuple[int, float, float, bool]]):
    """Engine arrays from (node, seconds, ms, error) tuples."""
    node, t_s, ms, err = (list(c) for c in zip(*items, strict=True))
    return rows(node, t_s, ms, err)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.floats(0, 119), st.floats(0.01, 5e4), st.booleans()),
        min_size=1,
        max_size=80,
    ),
    st.integers(1, 5),
    st.randoms(use_true_random=False),
)
def test_any_batching_and_interleaving_gives_the_same_window(
    items: list[tuple[int, float, float, bool]], parts: int, rnd: random.Random
) -> None:
    whole = WindowState(bucket_s=10, window_s=120, min_samples=1)
    whole.observe(*columns(items))
    # The newest row goes first so no row is ever late; the rest arrive in any order.
    newest = max(items, key=lambda it: it[1])
    rest = list(items)
    rest.remove(newest)
    rnd.shuffle(rest)
    ordered = [newest, *rest]
    split = WindowState(bucket_s=10, window_s=120, min_samples=1)
    for chunk in np.array_split(np.arange(len(ordered)), parts):
        if chunk.size:
            split.observe(*columns([ordered[i] for i in chunk]))
    a, b = whole.snapshot(), split.snapshot()
    assert a is not None and b is not None
    n = min(a.counts.size, b.counts.size)
    assert a.counts[:n].tolist() == b.counts[:n].tolist()
    assert a.errors[:n].tolist() == b.errors[:n].tolist()
    assert np.array_equal(a.histograms[:n], b.histograms[:n])
    assert int(a.counts.sum()) == int(b.counts.sum()) == len(items)


def test_capacity_doubles_up_to_the_bound_and_memory_is_bounded() -> None:
    w = WindowState(n_nodes_capacity=4, bucket_s=60, window_s=300, min_samples=1, max_nodes=64)
    w.observe(*rows([5], [0], [1.0]))
    assert w.capacity == 8
    w.observe(*rows([40, 63, 64, 1000], [0] * 4, [1.0] * 4))
    assert w.capacity == 64 and w.dropped_capacity == 2
    assert {f.node for f in w.evaluate()} == {5, 40, 63}
    # The documented bound: buckets x max_nodes x (bins x 4 + 2 counters x 8) bytes.
    assert w.memory_bytes == 5 * 64 * (N_BINS * 4 + 16)
    default = WindowState()
    assert 5 * default.max_nodes * (N_BINS * 4 + 16) < 18 * 2**20


def test_bad_configuration_and_misaligned_arrays_are_refused() -> None:
    with pytest.raises(ConfigError, match="multiple of bucket_s"):
        WindowState(bucket_s=60, window_s=90)
    with pytest.raises(ConfigError):
        WindowState(bucket_s=0)
    with pytest.raises(ConfigError):
        WindowState(min_samples=0)
    w = WindowState()
    with pytest.raises(ValueError, match="aligned"):
        w.observe(np.zeros(2, np.int32), np.zeros(1, np.int64), np.zeros(2), np.zeros(2, bool))
    assert w.evaluate() == [] and w.snapshot() is None


def test_metric_range_flags_rows_outside_their_metric_bounds() -> None:
    lo, hi = metric_bounds([MetricEntry(node_id="m0", context="c", min=0.0, max=100.0),
                            None,
                            MetricEntry(node_id="m2", context="c", min=1.0)])  # fmt: skip
    value = np.array([50.0, 101.0, -1.0, 1e9, 0.5, 2.0, math.nan, 5.0, 5.0])
    metric = np.array([0, 0, 0, 1, 2, 2, 0, -1, 7], np.int32)
    assert metric_range(value, metric, lo, hi).tolist() == [
        False, True, True, False, True, False, False, False, False,
    ]  # fmt: skip
    empty = metric_bounds([])
    assert metric_range(value, metric, *empty).tolist() == [False] * 9
