"""Latency histograms of the rate checks: the fixed log-spaced bin layout, binning, reading.

A histogram has :data:`N_BINS` bins from 1 µs to 10 min, each x1.106 wide (bin 0 is below 1 µs,
bin ``N_BINS - 1`` is 10 min or more); percentiles interpolated inside a bin are typically within
3 % and always within one bin, so percentiles come from merged histograms and no sample is
stored. :func:`add_counts` is how the histograms (and the counters beside them) are filled.

Separate from :mod:`sidecar.drift.windows` because the layout is shared: the sliding windows
fill these histograms, :mod:`sidecar.drift.budgets` reads them against budgets, and the learned
baseline (:mod:`sidecar.drift.baseline`) stores them in its profiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Latency histogram layout: bin 0 is below 1 µs (and 0), bin N_BINS-1 is 10 min or more.
LATENCY_MIN_MS = 1e-3
LATENCY_MAX_MS = 6e5
LATENCY_BINS = 200
N_BINS = LATENCY_BINS + 2
#: Width of one bin in natural-log units (ln 6e8 / 200 ~ 0.101, i.e. x1.106 per bin).
BIN_LOG_WIDTH = math.log(LATENCY_MAX_MS / LATENCY_MIN_MS) / LATENCY_BINS


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
