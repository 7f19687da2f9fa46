"""Composition shared by the commands that run the engine (``replay``, ``serve``)."""

from __future__ import annotations

from pathlib import Path

from sidecar.drift.baseline import BaselineLearner, BaselineProfile
from sidecar.drift.rates import RateSettings, RateTracker
from sidecar.settings import DriftSettings


def rate_tracker(
    drift: DriftSettings,
    *,
    baseline: Path | None = None,
    learn: bool = False,
    window_s: float | None = None,
    bucket_s: float | None = None,
) -> RateTracker:
    """Rate windows from the drift settings (window and step overridable per command)."""
    return RateTracker(
        RateSettings(
            bucket_s=bucket_s or drift.bucket_s,
            window_s=window_s or drift.window_s,
            min_samples=drift.min_samples,
            max_series=drift.max_series,
            baseline_tolerance=drift.baseline_tolerance,
        ),
        baseline=BaselineProfile.load(baseline) if baseline is not None else None,
        learner=BaselineLearner() if learn else None,
    )
