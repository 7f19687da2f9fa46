"""The sidecar's one error tree.

::

    BehaviorError                      base of everything raised on purpose
    ├── ConfigError                    bad settings or command-line usage
    ├── SpecError                      the spec tree cannot be used
    │   └── SpecInvalid                validation found problems (carries them, path:line each)
    ├── SpecIndexError                 a compiled index cannot be used
    │   ├── IndexNotFound              no index under that hash / no current pointer
    │   ├── IndexCorrupt               payload undecodable, wrong schema, hash mismatch
    │   └── IndexCacheUnavailable      the cache (Redis) did not answer; transient
    ├── ExportFailed                   a collector refused an OTLP export or did not answer
    └── TelemetryError                 telemetry the sidecar was given cannot be used
        ├── OtlpDecodeError            one OTLP document/message is malformed (where and why)
        └── ProjectionError            a processor request (CorrelateRequest) is malformed;
                                       names the field (gRPC INVALID_ARGUMENT)

Adapters translate driver errors at their boundary (``raise IndexCacheUnavailable(...) from
exc``); only the edges (CLI exit codes, gRPC status, HTTP status) decide how to show them.
"""

from __future__ import annotations

from collections.abc import Sequence

from sidecar.spec.model import Problem


class BehaviorError(Exception):
    """Base of every error the sidecar raises on purpose."""


class ConfigError(BehaviorError):
    """Bad settings or command-line usage."""


class SpecError(BehaviorError):
    """The spec tree cannot be used."""


class SpecInvalid(SpecError):
    """Validation found problems; each one says ``path:line: message``."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = str(self.problems[0]) if self.problems else "no details"
        super().__init__(f"{len(self.problems)} spec problem(s); first: {first}")


class SpecIndexError(BehaviorError):
    """A compiled runtime index cannot be used."""


class IndexNotFound(SpecIndexError):
    """No index is stored under that hash, or no current pointer is set."""


class IndexCorrupt(SpecIndexError):
    """A stored index payload cannot be decoded, has the wrong schema or the wrong hash."""


class IndexCacheUnavailable(SpecIndexError):
    """The index cache did not answer (transient; retry later)."""


class TelemetryError(BehaviorError):
    """Telemetry the sidecar was given cannot be used."""


class ExportFailed(BehaviorError):
    """A collector refused an OTLP export, or did not answer after the retries."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"export to {endpoint} failed: {reason}")


class OtlpDecodeError(TelemetryError):
    """One OTLP document or message cannot be decoded; says where and why.

    ``source`` is the file name (or ``<request>``), ``position`` is human text such as
    ``line 3`` or ``line 1, resourceSpans[0].scopeSpans[1].spans[4].traceId``.
    """

    def __init__(self, source: str, position: str, reason: str) -> None:
        self.source = source
        self.position = position
        self.reason = reason
        super().__init__(f"{source}: {position}: {reason}")

    def __reduce__(self) -> tuple[type[OtlpDecodeError], tuple[str, str, str]]:
        # Keeps the error picklable (worker processes, dead-letter records).
        return type(self), (self.source, self.position, self.reason)


class ProjectionError(TelemetryError):
    """A CorrelateRequest from the processor is malformed; ``field`` names the proto field.

    ``reason`` says what is wrong and what was expected, e.g. ``field='name'``,
    ``reason='code 17 is beyond the string table (12 strings)'``.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")

    def __reduce__(self) -> tuple[type[ProjectionError], tuple[str, str]]:
        return type(self), (self.field, self.reason)
