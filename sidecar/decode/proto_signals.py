"""Spans, log records and metric points of a parsed OTLP protobuf message, into columns.

The same columns and rules as the JSON decoder (``columns``, ``values``, ``semconv``); here
fields are read with ``operator.attrgetter`` over the parsed messages, so each column is
gathered in one C-level pass. What the protobuf parser cannot reject (ids of the wrong length,
enum numbers outside the enum, times beyond int64) is explained by :func:`find_defect`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from itertools import chain
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np

from sidecar.decode.columns import Columns
from sidecar.decode.values import (
    I64_MAX,
    SEVERITIES,
    SPAN_KINDS,
    STATUS_CODES,
    Plain,
    body_text,
    plain_text,
    point_mean,
)
from sidecar.evidence.batch import U64, Signal

#: The repeated field of each signal's top-level message, its scopes and its items.
FIELDS = {
    Signal.SPAN: ("resource_spans", "scope_spans", "spans"),
    Signal.LOG: ("resource_logs", "scope_logs", "log_records"),
    Signal.METRIC: ("resource_metrics", "scope_metrics", "metrics"),
}
_JSON_NAMES = {"resource_spans": "resourceSpans", "scope_spans": "scopeSpans",
               "resource_logs": "resourceLogs", "scope_logs": "scopeLogs",
               "log_records": "logRecords", "resource_metrics": "resourceMetrics",
               "scope_metrics": "scopeMetrics"}  # fmt: skip

_SPAN_FIELDS = attrgetter("trace_id", "span_id", "parent_span_id", "name", "kind",
                          "start_time_unix_nano", "end_time_unix_nano", "status.code",
                          "attributes")  # fmt: skip
_LOG_FIELDS = attrgetter("time_unix_nano", "observed_time_unix_nano", "severity_number",
                         "body", "trace_id", "span_id", "event_name", "attributes")  # fmt: skip
_KEY_VALUE = attrgetter("key", "value")
_WHICH = methodcaller("WhichOneof", "value")
_STRING = attrgetter("string_value")
_KINDS = frozenset(SPAN_KINDS.values())
_STATUSES = frozenset(STATUS_CODES.values())
_SEVERITIES = frozenset(SEVERITIES.values())
_HISTOGRAMS = frozenset({"histogram", "exponential_histogram"})


def decode_resources(signal: Signal, resources: Sequence[Any], cols: Columns) -> int:
    """Fill ``cols`` from a message's resource list; the number of rows."""
    return _DECODERS[signal](resources, cols)


def _items(resources: Sequence[Any], cols: Columns, signal: Signal) -> list[Any]:
    _, scopes, items = FIELDS[signal]
    out: list[Any] = []
    for rs in resources:
        _resource(rs, cols, len(out))
        for ss in getattr(rs, scopes):
            out.extend(getattr(ss, items))
    return out


def _resource(rs: Any, cols: Columns, first_row: int) -> None:
    attributes = {kv.key: plain_text(plain(kv.value)) for kv in rs.resource.attributes}
    cols.start_resource(attributes, first_row)


def _spans(resources: Sequence[Any], cols: Columns) -> int:
    spans = _items(resources, cols, Signal.SPAN)
    if not spans:
        return 0
    trace, span, parent, name, kind, start, end, status, attributes = zip(
        *map(_SPAN_FIELDS, spans), strict=True
    )
    hi, lo = _trace_ids(trace)
    cols.set(
        trace_hi=hi,
        trace_lo=lo,
        span_id=_span_ids(span),
        parent_id=_span_ids(parent),
        name=cols.codes_of(name),
        kind=_enums(kind, _KINDS),
        start_ns=start,
        end_ns=end,
        status=_enums(status, _STATUSES),
    )
    _attributes(attributes, cols)
    return len(spans)


def _logs(resources: Sequence[Any], cols: Columns) -> int:
    records = _items(resources, cols, Signal.LOG)
    if not records:
        return 0
    time, observed, sev, body, trace, span, event, attributes = zip(
        *map(_LOG_FIELDS, records), strict=True
    )
    hi, lo = _trace_ids(trace)
    cols.set(
        trace_hi=hi,
        trace_lo=lo,
        span_id=_span_ids(span),
        # A record without an event time is placed at the time the collector saw it.
        start_ns=[t or o for t, o in zip(time, observed, strict=True)],
        severity=_enums(sev, _SEVERITIES),
        body=cols.codes_of(_bodies(body)),
    )
    cols.set_event_names(cols.codes_of(event))
    _attributes(attributes, cols)
    return len(records)


def _metrics(resources: Sequence[Any], cols: Columns) -> int:
    start: list[int] = []
    name: list[int] = []
    value: list[float] = []
    exemplars: list[Any] = []
    attributes: list[Any] = []
    for rs in resources:
        _resource(rs, cols, len(start))
        for metric in chain.from_iterable(ss.metrics for ss in rs.scope_metrics):
            field = metric.WhichOneof("data")
            if field is None:
                continue
            code = cols.code(metric.name)
            for point in getattr(metric, field).data_points:
                start.append(point.time_unix_nano)
                name.append(code)
                value.append(_point_value(field, point))
                exemplars.append(_first_exemplar(point))
                attributes.append(point.attributes)
    traces = [b"" if e is None else e.trace_id for e in exemplars]
    spans = [b"" if e is None else e.span_id for e in exemplars]
    hi, lo = _trace_ids(traces)
    cols.set(
        start_ns=start,
        name=name,
        value=value,
        ex_trace_hi=hi,
        ex_trace_lo=lo,
        ex_span_id=_span_ids(spans),
    )
    _attributes(attributes, cols)
    return len(start)


def _first_exemplar(point: Any) -> Any:
    """The first exemplar of a point, or None (summary points have none at all)."""
    exemplars: Any = getattr(point, "exemplars", ())
    return exemplars[0] if len(exemplars) else None


def _point_value(field: str, point: Any) -> float:
    """A gauge/sum point's number; sum / count for histogram and summary points."""
    if field in ("gauge", "sum"):
        which = point.WhichOneof("value")
        return float("nan") if which is None else float(getattr(point, which))
    if field in _HISTOGRAMS:
        return point_mean(point.sum if point.HasField("sum") else None, point.count)
    return point_mean(point.sum, point.count)


def plain(value: Any) -> Plain:
    """An AnyValue message as plain Python (None when empty; bytes as bytes)."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [plain(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: plain(kv.value) for kv in value.kvlist_value.values}
    result: Plain = getattr(value, which)
    return result


def _attributes(lists: Sequence[Any], cols: Columns) -> None:
    kvs = list(chain.from_iterable(lists))
    keys, values = zip(*map(_KEY_VALUE, kvs), strict=True) if kvs else ((), ())
    if {"string_value"}.issuperset(map(_WHICH, values)):
        texts: Sequence[str] = list(map(_STRING, values))
        numbers = cols.numbers_of(texts)
    else:
        texts, numbers = cols.texts_numbers(list(map(plain, values)))
    cols.set_attributes(list(map(len, lists)), keys, texts, numbers)


def _bodies(values: Sequence[Any]) -> Sequence[str]:
    if {"string_value"}.issuperset(map(_WHICH, values)):
        return list(map(_STRING, values))
    return [body_text(plain(v)) for v in values]


def _enums(values: Sequence[int], valid: frozenset[int]) -> Sequence[int]:
    if not valid.issuperset(values):
        raise ValueError("enum number outside the enum")
    return values


def _trace_ids(values: Sequence[bytes]) -> tuple[U64, U64]:
    words = _id_words(values, 16)
    return words[:, 0].copy(), words[:, 1].copy()


def _span_ids(values: Sequence[bytes]) -> U64:
    return _id_words(values, 8)[:, 0].copy()


def _id_words(values: Sequence[bytes], size: int) -> U64:
    """Byte ids as 64-bit big-endian words, one row per id (empty ids 0)."""
    if b"" in values:
        zero = bytes(size)
        values = [v or zero for v in values]
    if not {size}.issuperset(map(len, values)):
        raise ValueError("an id has the wrong length")
    raw = b"".join(values)
    return np.frombuffer(raw, ">u8").astype(np.uint64).reshape(len(values), size // 8)


def find_defect(message: Any, signal: Signal) -> tuple[str, str] | None:
    """The path (JSON field names) and reason of the first field the decoder rejects."""
    top, scopes, items = FIELDS[signal]
    names = [_JSON_NAMES.get(f, f) for f in FIELDS[signal]]
    for i, rs in enumerate(getattr(message, top)):
        for j, ss in enumerate(getattr(rs, scopes)):
            for k, item in enumerate(getattr(ss, items)):
                for where, reason in _CHECKS[signal](item):
                    return f"{names[0]}[{i}].{names[1]}[{j}].{names[2]}[{k}].{where}", reason
    return None


def _check_span(span: Any) -> Iterator[tuple[str, str]]:
    yield from _check_id(span.trace_id, 16, "traceId")
    yield from _check_id(span.span_id, 8, "spanId")
    yield from _check_id(span.parent_span_id, 8, "parentSpanId")
    yield from _check_enum(span.kind, _KINDS, "kind", "a SpanKind (0-5)")
    yield from _check_time(span.start_time_unix_nano, "startTimeUnixNano")
    yield from _check_time(span.end_time_unix_nano, "endTimeUnixNano")
    yield from _check_enum(span.status.code, _STATUSES, "status.code", "a StatusCode (0-2)")


def _check_log(rec: Any) -> Iterator[tuple[str, str]]:
    if rec.time_unix_nano:
        yield from _check_time(rec.time_unix_nano, "timeUnixNano")
    else:
        yield from _check_time(rec.observed_time_unix_nano, "observedTimeUnixNano")
    yield from _check_enum(
        rec.severity_number, _SEVERITIES, "severityNumber", "a SeverityNumber (0-24)"
    )
    yield from _check_id(rec.trace_id, 16, "traceId")
    yield from _check_id(rec.span_id, 8, "spanId")


def _check_metric(metric: Any) -> Iterator[tuple[str, str]]:
    field = metric.WhichOneof("data")
    if field is None:
        return
    json_field = "exponentialHistogram" if field == "exponential_histogram" else field
    for i, point in enumerate(getattr(metric, field).data_points):
        where = f"{json_field}.dataPoints[{i}]"
        for at, reason in _check_point(point):
            yield f"{where}.{at}", reason


def _check_point(point: Any) -> Iterator[tuple[str, str]]:
    yield from _check_time(point.time_unix_nano, "timeUnixNano")
    exemplar = _first_exemplar(point)
    if exemplar is not None:
        yield from _check_id(exemplar.trace_id, 16, "exemplars[0].traceId")
        yield from _check_id(exemplar.span_id, 8, "exemplars[0].spanId")


def _check_id(value: bytes, size: int, where: str) -> Iterator[tuple[str, str]]:
    if value and len(value) != size:
        yield where, f"{where.rsplit('.', 1)[-1]} has {len(value)} bytes, expected {size}"


def _check_enum(
    value: int, valid: frozenset[int], where: str, what: str
) -> Iterator[tuple[str, str]]:
    if value not in valid:
        yield where, f"{where.rsplit('.', 1)[-1]} {value} is not {what}"


def _check_time(value: int, where: str) -> Iterator[tuple[str, str]]:
    if value > I64_MAX:
        yield where, f"{where} {value} is not a timestamp (int64 nanoseconds)"


_DECODERS: dict[Signal, Callable[[Sequence[Any], Columns], int]] = {
    Signal.SPAN: _spans,
    Signal.LOG: _logs,
    Signal.METRIC: _metrics,
}
_CHECKS: dict[Signal, Callable[[Any], Iterator[tuple[str, str]]]] = {
    Signal.SPAN: _check_span,
    Signal.LOG: _check_log,
    Signal.METRIC: _check_metric,
}
