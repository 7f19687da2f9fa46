"""OTLP/gRPC export of OTLP messages to a collector (``python -m sidecar send``, the demo).

Messages are split into export requests under ``max_request_bytes`` (the collector's OTLP
receiver refuses messages over 4 MiB by default) and of at most ``max_request_items`` items
(512 by default, the OpenTelemetry SDKs' export batch size, so replayed files arrive in the
requests live applications send): whole resources are packed together, and a resource too
large on its own is sent in parts, each a copy of the resource and scope with a slice of the
items. Refusals the OTLP spec calls retryable (UNAVAILABLE, RESOURCE_EXHAUSTED
from a memory limiter, ...) are retried with exponential backoff and jitter; anything else,
or running out of attempts, raises :class:`~sidecar.errors.ExportFailed`.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from sidecar.decode.otlp_message import OtlpData
from sidecar.errors import ExportFailed

_RETRYABLE = frozenset({
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED,
    grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.OUT_OF_RANGE,
    grpc.StatusCode.DATA_LOSS,
})  # fmt: skip
#: (resource list field, scope list field, item list field) per message type.
_FIELDS: dict[type[Any], tuple[str, str, str]] = {
    TracesData: ("resource_spans", "scope_spans", "spans"),
    LogsData: ("resource_logs", "scope_logs", "log_records"),
    MetricsData: ("resource_metrics", "scope_metrics", "metrics"),
}


class OtlpGrpcExporter:
    """Sends OTLP messages to one collector endpoint (plaintext, for loopback and demos)."""

    def __init__(self, endpoint: str, *, timeout_s: float = 10.0,
                 max_request_bytes: int = 3 << 20, max_request_items: int | None = 512,
                 attempts: int = 5, rate: float | None = None) -> None:  # fmt: skip
        self.endpoint = endpoint
        #: Items per second at most (None: as fast as the collector takes them).
        self.rate = rate
        self._paced_items = 0
        self._pace_start = time.monotonic()
        self.timeout_s = timeout_s
        self.max_request_bytes = max_request_bytes
        #: Items per request at most (None: only the byte limit splits).
        self.max_request_items = max_request_items
        self.attempts = attempts
        self._channel = grpc.insecure_channel(endpoint)
        channel = self._channel
        self._export: dict[type[Any], Callable[[Any, float], Any]] = {
            TracesData: _call(_stub(trace_service_pb2_grpc, "TraceServiceStub", channel),
                              trace_service_pb2.ExportTraceServiceRequest),
            LogsData: _call(_stub(logs_service_pb2_grpc, "LogsServiceStub", channel),
                            logs_service_pb2.ExportLogsServiceRequest),
            MetricsData: _call(_stub(metrics_service_pb2_grpc, "MetricsServiceStub", channel),
                               metrics_service_pb2.ExportMetricsServiceRequest),
        }  # fmt: skip

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def send(self, message: OtlpData) -> int:
        """Export a whole message in requests under the size limit; the requests sent."""
        sent = 0
        for part in split(message, self.max_request_bytes, self.max_request_items):
            self._pace(part)
            self._send_one(part)
            sent += 1
        return sent

    def _pace(self, part: OtlpData) -> None:
        """Sleep until sending ``part`` keeps the average at or under ``rate`` items/s."""
        if self.rate is None:
            return
        top, scopes, items = _FIELDS[type(part)]
        self._paced_items += sum(
            len(getattr(ss, items)) for rs in getattr(part, top) for ss in getattr(rs, scopes)
        )
        due = self._pace_start + self._paced_items / self.rate
        time.sleep(max(0.0, due - time.monotonic()))

    def _send_one(self, part: OtlpData) -> None:
        export = self._export[type(part)]
        for attempt in range(1, self.attempts + 1):
            try:
                export(part, self.timeout_s)
                return
            except grpc.RpcError as exc:
                code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
                if code not in _RETRYABLE or attempt == self.attempts:
                    detail = exc.details() if isinstance(exc, grpc.Call) else str(exc)
                    raise ExportFailed(self.endpoint, f"{code.name}: {detail}") from exc
                time.sleep(min(5.0, 0.2 * 2**attempt) * (0.5 + random.random() / 2))


def _stub(module: Any, name: str, channel: grpc.Channel) -> Any:
    """A client stub of the generated (untyped) OTLP service modules."""
    return getattr(module, name)(channel)


def _call(stub: Any, request: type[Any]) -> Callable[[Any, float], Any]:
    """An export RPC taking the data message (its resource list becomes the request's)."""
    field = next(f for f in request.DESCRIPTOR.fields_by_name if f.startswith("resource_"))

    def call(data: Any, timeout_s: float) -> Any:
        return stub.Export(request(**{field: getattr(data, field)}), timeout=timeout_s)

    return call


def split(message: OtlpData, max_bytes: int, max_items: int | None = None) -> Iterator[OtlpData]:
    """Messages of the same type under ``max_bytes`` and of at most ``max_items`` items
    (None: no item limit) holding all of ``message``'s items, in order."""
    top, scopes, items = _FIELDS[type(message)]
    limit = max_items if max_items is not None else sys.maxsize
    out, count = type(message)(), 0
    for rs in getattr(message, top):
        n = sum(len(getattr(ss, items)) for ss in getattr(rs, scopes))
        if rs.ByteSize() > max_bytes or n > limit:
            if len(getattr(out, top)):
                yield out
                out, count = type(message)(), 0
            yield from _split_resource(message, rs, max_bytes, limit)
            continue
        if len(getattr(out, top)) and (
            out.ByteSize() + rs.ByteSize() + 8 > max_bytes or count + n > limit
        ):
            yield out
            out, count = type(message)(), 0
        getattr(out, top).add().CopyFrom(rs)
        count += n
    if len(getattr(out, top)):
        yield out


def _split_resource(message: OtlpData, rs: Any, max_bytes: int, limit: int) -> Iterator[OtlpData]:
    """One resource too large (in bytes or items) as several messages with slices of its
    items."""
    _, scopes, items = _FIELDS[type(message)]
    for ss in getattr(rs, scopes):
        budget = max_bytes - rs.resource.ByteSize() - ss.scope.ByteSize() - 64
        chunk: list[Any] = []
        size = 0
        for item in getattr(ss, items):
            n = item.ByteSize() + 8
            if chunk and (size + n > budget or len(chunk) == limit):
                yield _with_items(message, rs, ss, chunk)
                chunk, size = [], 0
            chunk.append(item)
            size += n
        if chunk:
            yield _with_items(message, rs, ss, chunk)


def _with_items(message: OtlpData, rs: Any, ss: Any, chunk: list[Any]) -> OtlpData:
    """A message of ``rs``'s resource and ``ss``'s scope holding just ``chunk``."""
    top, scopes, items = _FIELDS[type(message)]
    out = type(message)()
    part = getattr(out, top).add()
    part.resource.CopyFrom(rs.resource)
    part.schema_url = rs.schema_url
    scope = getattr(part, scopes).add()
    scope.scope.CopyFrom(ss.scope)
    scope.schema_url = ss.schema_url
    getattr(scope, items).extend(chunk)
    return out
