"""Where the servicer hands each processed batch for persistence (a later issue).

The gRPC path must never wait for storage: the processor's timeout is 200 ms and the
pipeline must not slow down when Neo4j or Postgres do. So :meth:`EvidenceSink.offer` is
synchronous, called on the engine thread right after a batch is annotated, and must return
at once: an implementation copies what it needs into a bounded outbox (e.g. Redis Streams)
and drops (and counts) what does not fit. It must not raise; the response is sent whether or
not the sink took the batch. The batch and result are not used by the servicer afterwards.
"""

from __future__ import annotations

from typing import Protocol

from sidecar.engine import EngineResult
from sidecar.evidence.batch import EvidenceBatch
from sidecar.report import DriftReport


class EvidenceSink(Protocol):
    """Takes processed batches without blocking (see the module docstring)."""

    def offer(self, batch: EvidenceBatch, result: EngineResult) -> None:
        """Accept or drop one batch; never block, never raise."""
        ...


class NoSink:
    """The default until persistence exists: nothing is kept."""

    def offer(self, batch: EvidenceBatch, result: EngineResult) -> None:
        """Drop the batch."""


class ReportSink:
    """Folds every batch into a drift report (``serve --report``); the report is in memory
    and bounded by the spec's nodes and the services seen, not by the traffic."""

    def __init__(self, report: DriftReport) -> None:
        self.report = report

    def offer(self, batch: EvidenceBatch, result: EngineResult) -> None:
        """Count the batch's annotations into the report."""
        self.report.add(batch, result.annotations)
