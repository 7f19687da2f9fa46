"""The sidecar's one settings object, built once in the composition root (the CLI).

Values come from the command line first, then environment variables with the ``BEHAVIOR_``
prefix (nested sections with ``__``: ``BEHAVIOR_SPEC__REDIS_URL``), then these defaults.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator
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


class ServerSettings(BaseModel):
    """The gRPC server the processor calls (``serve``)."""

    #: HOST:PORT to listen on (``[::1]:50051`` for IPv6); the shipped collector configs use
    #: 127.0.0.1:50051.
    listen: str = "127.0.0.1:50051"
    #: Processes sharing the port (SO_REUSEPORT): one per core for a multi-core host.
    workers: int = Field(default=1, ge=1, le=256)
    #: The largest request accepted (gRPC receive limit), told to the processor in Hello.
    max_request_bytes: int = Field(default=16 << 20, ge=1 << 10, le=2**31 - 1)
    #: How long in-flight requests may finish after SIGTERM/SIGINT before they are cancelled.
    grace_period_s: float = Field(default=10.0, ge=0)
    #: Requests held at once (queued for the engine or running); more get RESOURCE_EXHAUSTED.
    #: With max_request_bytes this bounds the memory requests can pin.
    max_concurrent_rpcs: int = Field(default=16, ge=1)

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(f"'{value}' is not HOST:PORT")
        return value


class PrivacySettings(BaseModel):
    """What the sidecar asks to see of the telemetry."""

    #: Ask the processor for every attribute of every item and resource (PII detection must
    #: see every value). False asks only for the keys the spec index and bindings read: smaller
    #: requests, but PII in other attributes goes unseen.
    scan_all_attributes: bool = True


class Settings(BaseSettings):
    """All settings, one nested section per concern."""

    model_config = SettingsConfigDict(
        env_prefix="BEHAVIOR_", env_nested_delimiter="__", extra="ignore"
    )

    spec: SpecSettings = SpecSettings()
    drift: DriftSettings = DriftSettings()
    server: ServerSettings = ServerSettings()
    privacy: PrivacySettings = PrivacySettings()
    log_level: str = "INFO"
