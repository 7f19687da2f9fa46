"""The gRPC sidecar: the processor's projection in, annotations out (`serve`)."""

from sidecar.serve.app import ServeOptions, run_worker, serve
from sidecar.serve.metrics import NoMetrics, ServerMetrics
from sidecar.serve.pipeline import Pipeline
from sidecar.serve.projection_keys import projection_for, projection_keys
from sidecar.serve.server import CorrelationServicer
from sidecar.serve.sink import EvidenceSink, NoSink, ReportSink

__all__ = [
    "CorrelationServicer",
    "EvidenceSink",
    "NoMetrics",
    "NoSink",
    "Pipeline",
    "ReportSink",
    "ServeOptions",
    "ServerMetrics",
    "projection_for",
    "projection_keys",
    "run_worker",
    "serve",
]
