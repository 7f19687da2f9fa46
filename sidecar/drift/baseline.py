"""The learned baseline profile: learn it, save/load it as JSON, compare windows with it.

A profile holds, per spec node id, the latency histogram (the window layout, stored sparse),
sample and error counts and throughput per minute of a stretch of telemetry believed normal.
Memory: the learner holds ``max_nodes x N_BINS x 8`` bytes (6.3 MiB for 4096 nodes); a loaded
profile holds at most ``N_BINS`` (bin, count) pairs per node.

Shift test (latency), per node, between the baseline histogram B and the window's C::

    w     = BIN_LOG_WIDTH * sum_i max(0, F_B(i - t) - F_C(i))      (slower; faster mirrors it)
    noise = J * sqrt(1/n_B + 1/n_C),  J = BIN_LOG_WIDTH * sum_i sqrt(F(i) (1 - F(i)))
    score = w / (w + SHIFT_HALF) * clip((w / noise - 2) / 2, 0, 1)

``w`` is the one-sided 1-Wasserstein distance between the log-latency distributions after
giving the baseline a tolerance of ``t`` bins (x``tolerance``): the average over all
percentiles of how many e-folds slower the window is beyond the tolerance. It uses the whole
distribution, so it is not fooled by a percentile that sits on a knee between two modes (the
p95 of a bimodal operation can move x20 when the slow mode gains 1 % of the mass; ``w`` moves
by 1 % of the gap). ``noise`` is the scale of ``w`` between two samples of one distribution
(F is the pooled CDF); in simulation ``w / noise`` stays below 2 in 99 % of same-distribution
pairs for 30 to 2000 samples, so the confidence factor starts at 2 and is full at 4. The size
factor is hyperbolic, not exponential, so large shifts still rank against each other (x10
beyond tolerance scores 0.92, x100 0.96): with the default tolerance (x1.25, applied as 2 bins
= x1.22) a significant uniform x2 slowdown scores 0.70, the alert threshold.

Errors: a window whose error ratio exceeds the baseline's scores
``(1 - (p_B + 0.01) / (p_C + 0.01)) * clip((z - 2) / 2, 0, 1)``. ``z`` is the normal quantile
of the exact binomial tail ``P(X >= k_C)``, ``X ~ Binomial(n_C, (k_B + 0.5) / (n_B + 1))``
(the baseline's rate with Jeffreys' half-count, so a zero-error baseline is not taken for
certainty). Counts are small where errors are rare: the two-proportion z statistic put one
error in 30 calls over a clean baseline of 500 at z = 4.1 (full confidence); its exact tail is
0.06 (z = 1.6). Throughput is recorded for reports; it is not scored (load varies by design).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sidecar.drift.budgets import binomial_tail
from sidecar.drift.histograms import (
    BIN_LOG_WIDTH,
    LATENCY_BINS,
    LATENCY_MAX_MS,
    LATENCY_MIN_MS,
    N_BINS,
    add_counts,
    latency_bins,
    quantiles,
)
from sidecar.drift.windows import WindowSnapshot, grown_capacity, span_rows
from sidecar.errors import ConfigError

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

BASELINE_FORMAT: Final = "behavior.baseline"
#: Bumped when the profile's JSON shape changes; older files are refused with a clear message.
BASELINE_SCHEMA_VERSION: Final = 1
#: The drift kind every shift finding reports.
BASELINE_SHIFT = "baseline_shift"
#: Latency shift (nats beyond tolerance) that scores 0.5; x2 overall then scores 0.70.
SHIFT_HALF = 0.21
DEFAULT_TOLERANCE = 1.25
#: Significance (w / noise, or z for errors) where confidence starts and where it is full.
SIGNIFICANCE_START, SIGNIFICANCE_FULL = 2.0, 4.0
#: Additive smoothing of error ratios (one percentage point) so 0 % -> 0.1 % is not x-infinity.
ERROR_SMOOTHING = 0.01

_NORMAL = NormalDist()

Aspect = Literal["latency_slower", "latency_faster", "error_ratio"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HistogramLayout(_Strict):
    """The latency histogram layout a profile was learned with."""

    min_ms: float = LATENCY_MIN_MS
    max_ms: float = LATENCY_MAX_MS
    bins: int = LATENCY_BINS


class NodeBaseline(_Strict):
    """What one node looked like during the baseline stretch."""

    samples: int = Field(ge=1)
    errors: int = Field(ge=0)
    throughput_per_min: float = Field(ge=0)
    p50_ms: float
    p95_ms: float
    p99_ms: float
    #: Sparse latency histogram: (bin, count) pairs, bins ascending, counts > 0.
    histogram: tuple[tuple[int, int], ...]

    @model_validator(mode="after")
    def _consistent(self) -> NodeBaseline:
        bins = [b for b, _ in self.histogram]
        if any(not 0 <= b < N_BINS for b in bins) or bins != sorted(set(bins)):
            raise ValueError(f"histogram bins must be distinct, ascending, in 0..{N_BINS - 1}")
        if any(c <= 0 for _, c in self.histogram):
            raise ValueError("histogram counts must be positive")
        if sum(c for _, c in self.histogram) != self.samples:
            raise ValueError("histogram counts must add up to samples")
        if self.errors > self.samples:
            raise ValueError("errors cannot exceed samples")
        return self

    def dense(self) -> I64:
        """The histogram as a dense array of N_BINS counts."""
        out = np.zeros(N_BINS, np.int64)
        for b, c in self.histogram:
            out[b] = c
        return out


class BaselineProfile(_Strict):
    """Per-node baseline, keyed by spec node id; JSON on disk with a versioned schema."""

    format: Literal["behavior.baseline"] = BASELINE_FORMAT
    schema_version: Literal[1] = BASELINE_SCHEMA_VERSION
    histogram: HistogramLayout = HistogramLayout()
    start_ns: int
    end_ns: int
    nodes: dict[str, NodeBaseline]

    def save(self, path: Path) -> None:
        """Write the profile as JSON (atomically: a temporary file, then rename)."""
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(self.model_dump_json(indent=1), encoding="utf-8")
            tmp.replace(path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot write baseline profile: {exc}") from exc

    @classmethod
    def load(cls, path: Path) -> BaselineProfile:
        """Read and validate a profile; every problem names the file."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read baseline profile: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: not JSON: {exc.msg}") from exc
        if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
            raise ConfigError(f"{path}: not a baseline profile (expected format "
                              f"'{BASELINE_FORMAT}')")  # fmt: skip
        version = data.get("schema_version")
        if version != BASELINE_SCHEMA_VERSION:
            raise ConfigError(f"{path}: baseline schema version {version!r}, this sidecar reads "
                              f"{BASELINE_SCHEMA_VERSION}; learn the baseline again")  # fmt: skip
        try:
            profile = cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"{path}: invalid baseline profile at {where}: {first['msg']} "
                              f"({exc.error_count()} problem(s))") from exc  # fmt: skip
        if profile.histogram != HistogramLayout():
            raise ConfigError(
                f"{path}: histogram layout {profile.histogram} differs from this sidecar's "
                f"{HistogramLayout()}; learn the baseline again"
            )
        return profile


class BaselineLearner:
    """Accumulates per-node histograms over a stretch of telemetry (bounded by max_nodes)."""

    def __init__(self, n_nodes_capacity: int = 64, max_nodes: int = 4096) -> None:
        self.max_nodes = max_nodes
        self.capacity = min(n_nodes_capacity, max_nodes)
        self._hist: I64 = np.zeros((self.capacity, N_BINS), np.int64)
        self._errors: I64 = np.zeros(self.capacity, np.int64)
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.dropped_capacity = 0

    def observe(self, node: I32, time_ns: I64, duration_ms: F64, is_error: npt.NDArray[np.bool_],
                ) -> None:  # fmt: skip
        """Add a batch (rows aligned, same filter as the windows: spans with a node)."""
        node64 = np.asarray(node, np.int64)
        d = np.asarray(duration_ms, np.float64)
        rows, over = span_rows(node64, d, self.max_nodes)
        self.dropped_capacity += over
        if rows.size == 0:
            return
        t = np.asarray(time_ns, np.int64)[rows]
        lo, hi = int(t.min()), int(t.max())
        self.first_ns = lo if self.first_ns is None else min(self.first_ns, lo)
        self.last_ns = hi if self.last_ns is None else max(self.last_ns, hi)
        nodes = node64[rows]
        if int(nodes.max()) >= self.capacity:
            capacity = grown_capacity(self.capacity, int(nodes.max()) + 1, self.max_nodes)
            self._hist = np.pad(self._hist, ((0, capacity - self.capacity), (0, 0)))
            self._errors = np.pad(self._errors, (0, capacity - self.capacity))
            self.capacity = capacity
        add_counts(self._hist, nodes * N_BINS + latency_bins(d[rows]))
        add_counts(self._errors, nodes[np.asarray(is_error, np.bool_)[rows]])

    def profile(self, node_ids: Sequence[str]) -> BaselineProfile:
        """The profile of everything observed, keyed by ``node_ids[node]``."""
        counts = self._hist.sum(axis=1)
        present = np.flatnonzero(counts > 0)
        if self.first_ns is None or self.last_ns is None:
            return BaselineProfile(start_ns=0, end_ns=0, nodes={})
        minutes = max(self.last_ns - self.first_ns, 1_000_000_000) / 60e9
        qs = quantiles(self._hist[present], (0.5, 0.95, 0.99))
        nodes: dict[str, NodeBaseline] = {}
        for i, node in enumerate(present.tolist()):
            if node >= len(node_ids):
                raise ValueError(f"node {node} has no id (node_ids has {len(node_ids)})")
            bins = np.flatnonzero(self._hist[node])
            nodes[node_ids[node]] = NodeBaseline(
                samples=int(counts[node]),
                errors=int(self._errors[node]),
                throughput_per_min=round(float(counts[node]) / minutes, 6),
                p50_ms=float(qs[i, 0]),
                p95_ms=float(qs[i, 1]),
                p99_ms=float(qs[i, 2]),
                histogram=tuple((int(b), int(self._hist[node, b])) for b in bins),
            )
        return BaselineProfile(start_ns=self.first_ns, end_ns=self.last_ns, nodes=nodes)


def learn_baseline(node_ids: Sequence[str], node: I32, time_ns: I64, duration_ms: F64,
                   is_error: npt.NDArray[np.bool_]) -> BaselineProfile:  # fmt: skip
    """A profile from one stretch of telemetry given as aligned arrays."""
    learner = BaselineLearner()
    learner.observe(node, time_ns, duration_ms, is_error)
    return learner.profile(node_ids)


@dataclass(frozen=True, slots=True)
class ShiftFinding:
    """A node whose current window departs from its baseline (drift kind ``baseline_shift``)."""

    node: int
    node_id: str
    start_ns: int
    end_ns: int
    aspect: Aspect
    samples: int
    baseline_samples: int
    #: Latency: mean log-ratio beyond tolerance (nats); errors: ratio difference.
    effect: float
    #: w / noise for latency, the two-proportion z for errors.
    significance: float
    #: p95 (ms) or error ratio, now and in the baseline (for messages).
    current: float
    baseline: float
    score: float


def compare(
    profile: BaselineProfile,
    snapshot: WindowSnapshot,
    node_ids: Sequence[str],
    *,
    min_samples: int = 30,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[ShiftFinding]:
    """Shift findings (score > 0, highest first) of the window's nodes against the profile."""
    if tolerance < 1.0:
        raise ConfigError(f"baseline tolerance must be >= 1 (a factor), got {tolerance}")
    shift_bins = min(round(math.log(tolerance) / BIN_LOG_WIDTH), N_BINS - 1)
    counts = snapshot.counts
    pairs = [(n, profile.nodes[node_ids[n]]) for n in np.flatnonzero(counts >= min_samples).tolist()
             if n < len(node_ids) and node_ids[n] in profile.nodes]  # fmt: skip
    pairs = [(n, b) for n, b in pairs if b.samples >= min_samples]
    if not pairs:
        return []
    idx = np.array([n for n, _ in pairs], np.int64)
    base = np.stack([b.dense() for _, b in pairs]).astype(np.float64)
    cur = snapshot.histograms[idx].astype(np.float64)
    p95 = quantiles(cur, (0.95,))[:, 0]
    slower, faster, sig_up, sig_down = latency_shift(base, cur, shift_bins)
    findings: list[ShiftFinding] = []
    for i, (node, b) in enumerate(pairs):
        common = (node, node_ids[node], snapshot.start_ns, snapshot.end_ns)
        n = int(counts[node])
        latency: tuple[tuple[Aspect, float, float], ...] = (
            ("latency_slower", float(slower[i]), float(sig_up[i])),
            ("latency_faster", float(faster[i]), float(sig_down[i])),
        )
        for aspect, effect, sig in latency:
            score = shift_score(effect, sig)
            if score > 0:
                current = float(p95[i])
                findings.append(ShiftFinding(*common, aspect, n, b.samples, effect, sig, current,
                                             b.p95_ms, score))  # fmt: skip
        errs = int(snapshot.errors[node])
        err = error_shift(b.errors, b.samples, errs, n)
        if err is not None:
            findings.append(ShiftFinding(*common, "error_ratio", n, b.samples, *err))
    return sorted(findings, key=lambda f: -f.score)


def latency_shift(base: F64, cur: F64, shift_bins: int) -> tuple[F64, F64, F64, F64]:
    """Per row: slower and faster distances (nats) beyond tolerance, and their significance."""
    nb = base.sum(axis=1, keepdims=True)
    nc = cur.sum(axis=1, keepdims=True)
    fb = np.cumsum(base, axis=1) / nb
    fc = np.cumsum(cur, axis=1) / nc
    t = shift_bins
    # The baseline made slower (CDF moved right by t bins) and faster (moved left).
    fb_slow = np.concatenate([np.zeros((fb.shape[0], t)), fb[:, : fb.shape[1] - t]], axis=1)
    fb_fast = np.concatenate([fb[:, t:], np.ones((fb.shape[0], t))], axis=1)
    slower = BIN_LOG_WIDTH * np.maximum(fb_slow - fc, 0.0).sum(axis=1)
    faster = BIN_LOG_WIDTH * np.maximum(fc - fb_fast, 0.0).sum(axis=1)
    pooled = (fb + fc) / 2
    spread = BIN_LOG_WIDTH * np.sqrt(pooled * (1.0 - pooled)).sum(axis=1)
    noise = np.maximum(spread, BIN_LOG_WIDTH / 2) * np.sqrt(1.0 / nb[:, 0] + 1.0 / nc[:, 0])
    return slower, faster, slower / noise, faster / noise


def _confidence(significance: float) -> float:
    span = SIGNIFICANCE_FULL - SIGNIFICANCE_START
    return min(max((significance - SIGNIFICANCE_START) / span, 0.0), 1.0)


def shift_score(effect: float, significance: float) -> float:
    """Latency shift score: size of the shift (saturating) times its significance."""
    if effect <= 0:
        return 0.0
    return effect / (effect + SHIFT_HALF) * _confidence(significance)


def error_shift(base_errors: int, base_n: int, errors: int, n: int,
                ) -> tuple[float, float, float, float, float] | None:  # fmt: skip
    """(effect, z, current, baseline, score) when the error ratio rose significantly."""
    pb, pc = base_errors / base_n, errors / n
    if pc <= pb:
        return None
    tail = binomial_tail(errors, n, (base_errors + 0.5) / (base_n + 1))
    z = -_NORMAL.inv_cdf(min(max(tail, 1e-15), 0.5))
    severity = 1.0 - (pb + ERROR_SMOOTHING) / (pc + ERROR_SMOOTHING)
    score = severity * _confidence(z)
    if score <= 0:
        return None
    return pc - pb, z, pc, pb, score
