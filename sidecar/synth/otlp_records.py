"""Telemetry records before encoding, and their encoding as OTLP JSON documents.

Records carry their :class:`~sidecar.synth.labels.ItemLabel`; :func:`encode_document` writes
one OTLP JSON document (protojson: camelCase, hex ids, int64 as strings, ``AnyValue``
wrappers) grouped resource -> scope -> item, and returns the labels in the same order, so the
order of labels and the order of items cannot disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sidecar.synth.labels import ItemLabel

#: OTLP span kinds.
INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER = 1, 2, 3, 4, 5
#: OTLP severity numbers.
INFO, WARN, ERROR = 9, 13, 17


@dataclass(slots=True)
class SpanRecord:
    """A span before encoding; ``res`` indexes the generator's resource table."""

    res: int
    scope: str
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    start: int
    end: int
    label: ItemLabel
    attrs: dict[str, Any] = field(default_factory=dict)
    status: int = 0
    message: str = ""


@dataclass(slots=True)
class LogRecord:
    """A log record before encoding (trace and span ids are its label's)."""

    res: int
    scope: str
    time: int
    severity: int
    body: str
    attrs: dict[str, Any]
    label: ItemLabel


@dataclass(slots=True)
class PointRecord:
    """A metric data point; ``exemplar`` is (trace id, span id, time, value) or None."""

    time: int
    value: int | float
    label: ItemLabel
    exemplar: tuple[str, str, int, int | float] | None = None


@dataclass(slots=True)
class MetricRecord:
    """One metric's points inside one document."""

    res: int
    scope: str
    name: str
    unit: str
    kind: str
    start: int
    points: list[PointRecord]


Resources = Sequence[Sequence[tuple[str, Any]]]
_SEVERITY = {INFO: "INFO", WARN: "WARN", ERROR: "ERROR"}


def encode_document(
    records: Sequence[SpanRecord] | Sequence[LogRecord] | Sequence[MetricRecord],
    resources: Resources,
    number: int,
) -> tuple[dict[str, Any], list[ItemLabel]]:
    """One OTLP JSON document (resource -> scope -> item) and its labels in the same order."""
    first = records[0]
    top, scoped, key = (
        ("resourceSpans", "scopeSpans", "spans")
        if isinstance(first, SpanRecord)
        else ("resourceLogs", "scopeLogs", "logRecords")
        if isinstance(first, LogRecord)
        else ("resourceMetrics", "scopeMetrics", "metrics")
    )
    grouped: dict[int, dict[str, list[Any]]] = {}
    for r in records:
        grouped.setdefault(r.res, {}).setdefault(r.scope, []).append(r)
    labels: list[ItemLabel] = []
    out = []
    for res, scopes in grouped.items():
        scope_docs = []
        for scope, members in scopes.items():
            items = []
            for m in members:
                items.append(_encode(m))
                for label in _labels_of(m):
                    label.doc = number
                    labels.append(label)
            scope_docs.append({"scope": {"name": scope}, key: items})
        out.append({"resource": {"attributes": attributes(resources[res])}, scoped: scope_docs})
    return {top: out}, labels


def attributes(pairs: dict[str, Any] | Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """OTLP ``KeyValue`` list with ``AnyValue`` wrappers (int64 as strings)."""
    items = pairs.items() if isinstance(pairs, dict) else pairs
    return [{"key": k, "value": _any_value(v)} for k, v in items]


def _any_value(v: Any) -> dict[str, Any]:
    if type(v) is str:
        return {"stringValue": v}
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": str(v)}


def _labels_of(r: SpanRecord | LogRecord | MetricRecord) -> list[ItemLabel]:
    return [p.label for p in r.points] if isinstance(r, MetricRecord) else [r.label]


def _encode(r: SpanRecord | LogRecord | MetricRecord) -> dict[str, Any]:
    if isinstance(r, SpanRecord):
        return _span(r)
    if isinstance(r, LogRecord):
        return _log(r)
    return _metric(r)


def _span(s: SpanRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": s.trace_id, "spanId": s.span_id}
    if s.parent_id:
        out["parentSpanId"] = s.parent_id
    out |= {
        "name": s.name,
        "kind": s.kind,
        "startTimeUnixNano": str(s.start),
        "endTimeUnixNano": str(s.end),
        "attributes": attributes(s.attrs),
    }
    if s.status:
        exception = {"exception.type": "StatusError", "exception.message": s.message}
        out["events"] = [
            {"timeUnixNano": str(s.end), "name": "exception", "attributes": attributes(exception)}
        ]
        out["status"] = {"code": s.status, "message": s.message}
    else:
        out["status"] = {}
    return out


def _log(x: LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "timeUnixNano": str(x.time),
        "observedTimeUnixNano": str(x.time + 2_000_000),
        "severityNumber": x.severity,
        "severityText": _SEVERITY[x.severity],
        "body": {"stringValue": x.body},
    }
    if x.attrs:
        out["attributes"] = attributes(x.attrs)
    return out | {"traceId": x.label.trace_id, "spanId": x.label.span_id}


def _number(value: int | float) -> dict[str, Any]:
    return {"asInt": str(value)} if isinstance(value, int) else {"asDouble": value}


def _metric(m: MetricRecord) -> dict[str, Any]:
    points = []
    for p in m.points:
        point: dict[str, Any] = {"timeUnixNano": str(p.time), **_number(p.value)}
        if m.kind == "sum":
            point = {"startTimeUnixNano": str(m.start), **point}
        if p.exemplar is not None:
            trace_id, span_id, when, value = p.exemplar
            point["exemplars"] = [
                {
                    "timeUnixNano": str(when),
                    **_number(value),
                    "spanId": span_id,
                    "traceId": trace_id,
                }
            ]
        points.append(point)
    data: dict[str, Any] = {"dataPoints": points}
    if m.kind == "sum":
        data |= {"aggregationTemporality": 2, "isMonotonic": True}
    return {"name": m.name, "unit": m.unit, m.kind: data}
