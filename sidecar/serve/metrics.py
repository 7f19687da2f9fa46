"""The server's self-telemetry: one small protocol, a no-op default, every metric name here.

An OpenTelemetry or Prometheus adapter implements :class:`ServerMetrics` at the edge; the
servicer only calls it. Calls happen on the event loop thread and must not block.
"""

from __future__ import annotations

from typing import Protocol

#: Requests answered, by signal (counter).
REQUESTS = "behavior_sidecar.requests"
#: Rows (spans, log records, data points) annotated, by signal (counter).
ROWS = "behavior_sidecar.rows"
#: Requests refused, by gRPC code and the field at fault (counter).
REJECTED = "behavior_sidecar.requests.rejected"
#: Time from receiving a request to its response, seconds (histogram).
LATENCY = "behavior_sidecar.request.duration"


class ServerMetrics(Protocol):
    """Where the servicer reports what it did."""

    def handled(self, signal: str, rows: int, seconds: float) -> None:
        """A Correlate request was answered."""
        ...

    def rejected(self, code: str, field: str) -> None:
        """A request was refused (INVALID_ARGUMENT, FAILED_PRECONDITION, ...)."""
        ...


class NoMetrics:
    """The default: reports go nowhere."""

    def handled(self, signal: str, rows: int, seconds: float) -> None:
        """Ignore."""

    def rejected(self, code: str, field: str) -> None:
        """Ignore."""
