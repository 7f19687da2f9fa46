"""OTLP JSON documents as their protobuf messages (for sending them on over OTLP/gRPC).

The OTLP JSON encoding differs from protobuf's canonical JSON mapping in two ways that
matter here: trace and span ids are hex, not base64, and recorders write non-finite doubles
as bare ``NaN``/``Infinity`` numbers. Both are mapped before ``ParseDict``.
"""

from __future__ import annotations

import base64
import math
from typing import Any

from google.protobuf.json_format import ParseDict, ParseError
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from sidecar.decode.problems import OtlpDecodeError

OtlpData = TracesData | LogsData | MetricsData

_HEX_IDS = frozenset({"traceId", "spanId", "parentSpanId"})
_MESSAGES: dict[str, type[OtlpData]] = {
    "resourceSpans": TracesData,
    "resourceLogs": LogsData,
    "resourceMetrics": MetricsData,
}


def to_message(doc: dict[str, Any], source: str = "<document>", line: int = 1) -> OtlpData:
    """The protobuf message of one OTLP JSON document; OtlpDecodeError when it is not one."""
    keys = [k for k in doc if k in _MESSAGES]
    if len(keys) != 1:
        raise OtlpDecodeError(
            source, f"line {line}", "expected exactly one of " + ", ".join(_MESSAGES)
        )
    message = _MESSAGES[keys[0]]()
    try:
        ParseDict(_canonical(doc), message, ignore_unknown_fields=True)
    except (ParseError, ValueError) as exc:
        raise OtlpDecodeError(source, f"line {line}", str(exc)) from exc
    return message


def _canonical(value: Any, key: str = "") -> Any:
    """OTLP JSON -> protobuf canonical JSON (ids as base64, non-finite doubles as text)."""
    if isinstance(value, dict):
        return {k: _canonical(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if key in _HEX_IDS and isinstance(value, str):
        try:
            return base64.b64encode(bytes.fromhex(value)).decode()
        except ValueError:
            return value  # ParseDict then reports the field
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
