"""The gRPC servicer (proto/behavior/v1 ``BehaviorCorrelation``): versions, errors, threads.

It only checks versions, hands each request to the :class:`Pipeline` (decoder, engine,
writer) and chooses the gRPC status of what went wrong:

- a protocol version the sidecar does not speak: ``FAILED_PRECONDITION`` naming both;
- a malformed request (:class:`ProjectionError`): ``INVALID_ARGUMENT`` with the reason;
- the client's deadline passed while the request waited: ``DEADLINE_EXCEEDED``;
- anything else: ``INTERNAL`` (logged with its traceback, never sent).

The pipeline runs on one engine thread per process, not on the event loop, so the health
service and new connections are answered while a batch is being correlated: the numba kernels
release the GIL (``nogil``), numpy does in its larger loops, and CPython switches threads at
least every few milliseconds otherwise. One thread, because the engine keeps state between
batches; more cores are used by more processes (``--workers``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import Executor

import grpc

from sidecar.errors import ProjectionError
from sidecar.evidence.annotations import DRIFT_KIND_NAMES
from sidecar.evidence.batch import Signal
from sidecar.protocol import correlation_pb2 as pb
from sidecar.protocol import correlation_pb2_grpc as pb_grpc
from sidecar.serve.metrics import NoMetrics, ServerMetrics
from sidecar.serve.pipeline import Pipeline

log = logging.getLogger(__name__)

PROTOCOL_VERSION = int(pb.PROTOCOL_VERSION_1)
_SIGNAL_NAMES = {
    int(pb.SIGNAL_SPANS): Signal.SPAN.name.lower(),
    int(pb.SIGNAL_LOGS): Signal.LOG.name.lower(),
    int(pb.SIGNAL_METRICS): Signal.METRIC.name.lower(),
}

HelloContext = grpc.aio.ServicerContext[pb.HelloRequest, pb.HelloResponse]
CorrelateContext = grpc.aio.ServicerContext[pb.CorrelateRequest, pb.CorrelateResponse]


class CorrelationServicer(pb_grpc.BehaviorCorrelationServicer):
    """Hello and Correlate over a pipeline that runs on ``engine_thread``."""

    def __init__(
        self,
        pipeline: Pipeline,
        engine_thread: Executor,
        *,
        max_request_bytes: int,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.engine_thread = engine_thread
        self.max_request_bytes = max_request_bytes
        self.metrics: ServerMetrics = metrics if metrics is not None else NoMetrics()

    async def Hello(self, request: pb.HelloRequest, context: HelloContext) -> pb.HelloResponse:  # noqa: N802 (the proto names it)
        """The version check and what the processor should send."""
        await self._check_version(request.protocol_version, context, "hello")
        log.info("hello from %s (protocol %d)", request.client or "a client", PROTOCOL_VERSION)
        return pb.HelloResponse(
            protocol_version=PROTOCOL_VERSION,
            spec_version=self.pipeline.spec_version,
            projection=self.pipeline.projection,
            drift_kind_names=DRIFT_KIND_NAMES,
            max_request_bytes=self.max_request_bytes,
        )

    async def Correlate(  # noqa: N802 (the proto names it)
        self, request: pb.CorrelateRequest, context: CorrelateContext
    ) -> pb.CorrelateResponse:
        """Annotate one batch (one chunk) of spans, log records or data points."""
        started = time.perf_counter()
        await self._check_version(request.protocol_version, context, "correlate")
        remaining = context.time_remaining()
        deadline = None if remaining is None else time.monotonic() + remaining
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(
                self.engine_thread, self.pipeline.handle, request, deadline
            )
        except ProjectionError as exc:
            log.debug("malformed %d-row request: %s", request.rows, exc)
            self.metrics.rejected(grpc.StatusCode.INVALID_ARGUMENT.name, exc.field)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"malformed request: {exc}")
        except Exception:
            log.exception("correlate failed on a %d-row request", request.rows)
            self.metrics.rejected(grpc.StatusCode.INTERNAL.name, "")
            await context.abort(
                grpc.StatusCode.INTERNAL, "the sidecar failed on this request (see its log)"
            )
        if response is None:
            self.metrics.rejected(grpc.StatusCode.DEADLINE_EXCEEDED.name, "")
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline passed in the queue")
        signal = _SIGNAL_NAMES.get(int(request.signal), "unknown")
        elapsed = time.perf_counter() - started
        self.metrics.handled(signal, int(request.rows), elapsed)
        log.debug("%s: %d rows in %.1f ms", signal, request.rows, elapsed * 1000)
        return response

    async def _check_version(
        self, version: int, context: HelloContext | CorrelateContext, rpc: str
    ) -> None:
        if version == PROTOCOL_VERSION:
            return
        self.metrics.rejected(grpc.StatusCode.FAILED_PRECONDITION.name, "protocol_version")
        log.warning("%s with protocol version %d refused", rpc, version)
        await context.abort(
            grpc.StatusCode.FAILED_PRECONDITION,
            f"the client speaks protocol version {version}, this sidecar speaks version "
            f"{PROTOCOL_VERSION} (behavior.v{PROTOCOL_VERSION})",
        )


def add_correlation(server: grpc.aio.Server, servicer: CorrelationServicer) -> None:
    """Register the servicer on a server."""
    pb_grpc.add_BehaviorCorrelationServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
