"""The sidecar's one settings object, built once in the composition root (the CLI).

Values come from the command line first, then environment variables with the ``BEHAVIOR_``
prefix (nested sections with ``__``: ``BEHAVIOR_SPEC__REDIS_URL``), then these defaults.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class SpecSettings(BaseModel):
    """Where the spec comes from and how the shared index cache behaves."""

    root: Path | None = None
    redis_url: str | None = None
    redis_prefix: str = "behavior:spec"
    #: How often a replica re-reads the current pointer in case a pub/sub message was missed.
    poll_interval_s: float = Field(default=30.0, gt=0)
    #: How many published index versions Redis keeps (older payloads are deleted).
    keep_versions: int = Field(default=10, ge=1, le=1000)


class DriftSettings(BaseModel):
    """Rate checks: sliding windows, sample minimum, series bound, baseline tolerance."""

    window_s: float = Field(default=300.0, gt=0)
    bucket_s: float = Field(default=60.0, gt=0)
    min_samples: int = Field(default=30, ge=1)
    #: Bound on (spec node, service, side) series held in windows; more are dropped, counted.
    max_series: int = Field(default=4096, ge=1)
    #: Latency factor a window may exceed the baseline by before it counts as a shift.
    baseline_tolerance: float = Field(default=1.25, ge=1.0)


class Settings(BaseSettings):
    """All settings, one nested section per concern."""

    model_config = SettingsConfigDict(
        env_prefix="BEHAVIOR_", env_nested_delimiter="__", extra="ignore"
    )

    spec: SpecSettings = SpecSettings()
    drift: DriftSettings = DriftSettings()
    log_level: str = "INFO"
