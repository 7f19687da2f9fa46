"""Spans, log records and metric points of an OTLP JSON document, gathered into columns.

Each field of every item is read once into a column, then the column is converted as a
whole when it is uniform (all ids hex strings of the right length, all times strings, all
attribute values ``stringValue``), else item by item through the ``json_fields`` rules. The
fast path trusts its input; whatever it trips on, ``json_fields.find_defect`` explains.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

import numpy as np

from sidecar.decode.columns import Columns
from sidecar.decode.json_fields import (
    METRIC_DATA,
    FieldError,
    any_value,
    arr,
    element,
    key_values,
    obj,
    point_value,
    severity,
    span_id,
    span_kind,
    status_code,
    text,
    timestamp,
    trace_id,
)
from sidecar.decode.values import (
    SEVERITIES,
    SPAN_KINDS,
    STATUS_CODES,
    body_text,
    plain_text,
)
from sidecar.evidence.batch import U64, Signal

_KINDS = frozenset(SPAN_KINDS.values())
_STATUSES = frozenset(STATUS_CODES.values())
_SEVERITIES = frozenset(SEVERITIES.values())


def decode_resources(signal: Signal, resources: list[Any], cols: Columns) -> int:
    """Fill ``cols`` from a document's resource list; the number of rows."""
    return _DECODERS[signal](resources, cols)


def _items(resources: list[Any], cols: Columns, scopes: str, items: str) -> list[Any]:
    """Every item of every scope, in order, starting a resource run for each resource."""
    out: list[Any] = []
    for rs in resources:
        _resource(rs, cols, len(out))
        for ss in arr(rs.get(scopes), scopes):
            out.extend(arr(ss.get(items), items))
    return out


def _resource(rs: Any, cols: Columns, first_row: int) -> None:
    resource = obj(rs.get("resource"), "resource")
    attributes = key_values(resource.get("attributes"), "resource.attributes")
    cols.start_resource({k: plain_text(v) for k, v in attributes}, first_row)


def _spans(resources: list[Any], cols: Columns) -> int:
    spans = _items(resources, cols, "scopeSpans", "spans")
    if not spans:
        return 0
    fields = [
        (s.get("traceId"), s.get("spanId"), s.get("parentSpanId"), s.get("name"),
         s.get("kind"), s.get("startTimeUnixNano"), s.get("endTimeUnixNano"),
         s.get("status"), s.get("attributes"))
        for s in spans
    ]  # fmt: skip
    trace, span, parent, name, kind, start, end, status, attributes = zip(*fields, strict=True)
    hi, lo = _trace_ids(trace)
    cols.set(
        trace_hi=hi,
        trace_lo=lo,
        span_id=_span_ids(span),
        parent_id=_span_ids(parent),
        name=cols.codes_of(_texts(name, "name")),
        kind=_enums(kind, _KINDS, span_kind),
        start_ns=_times(start, "startTimeUnixNano"),
        end_ns=_times(end, "endTimeUnixNano"),
        status=[0 if v is None else status_code(obj(v, "status").get("code")) for v in status],
    )
    _attributes(attributes, cols)
    return len(spans)


def _logs(resources: list[Any], cols: Columns) -> int:
    records = _items(resources, cols, "scopeLogs", "logRecords")
    if not records:
        return 0
    fields = [
        (r.get("timeUnixNano"), r.get("severityNumber"), r.get("body"), r.get("traceId"),
         r.get("spanId"), r.get("eventName"), r.get("attributes"))
        for r in records
    ]  # fmt: skip
    time, sev, body, trace, span, event, attributes = zip(*fields, strict=True)
    # A record without an event time is placed at the time the collector saw it.
    times = [
        t or timestamp(r.get("observedTimeUnixNano"), "observedTimeUnixNano")
        for t, r in zip(_times(time, "timeUnixNano"), records, strict=True)
    ]
    hi, lo = _trace_ids(trace)
    cols.set(
        trace_hi=hi,
        trace_lo=lo,
        span_id=_span_ids(span),
        start_ns=times,
        severity=_enums(sev, _SEVERITIES, severity),
        body=cols.codes_of(_bodies(body)),
    )
    cols.set_event_names(cols.codes_of(_texts(event, "eventName")))
    _attributes(attributes, cols)
    return len(records)


def _metrics(resources: list[Any], cols: Columns) -> int:
    points = _Points()
    for rs in resources:
        _resource(rs, cols, len(points.start))
        for ss in arr(rs.get("scopeMetrics"), "scopeMetrics"):
            for metric in arr(ss.get("metrics"), "metrics"):
                points.add(metric, cols)
    cols.set(
        start_ns=points.start,
        name=points.name,
        value=points.value,
        ex_trace_hi=points.ex_hi,
        ex_trace_lo=points.ex_lo,
        ex_span_id=points.ex_span,
    )
    _attributes(points.attributes, cols)
    return len(points.start)


class _Points:
    """Metric columns grown point by point: points are few next to spans and log records."""

    def __init__(self) -> None:
        self.start: list[int] = []
        self.name: list[int] = []
        self.value: list[float] = []
        self.ex_hi: list[int] = []
        self.ex_lo: list[int] = []
        self.ex_span: list[int] = []
        self.attributes: list[Any] = []

    def add(self, metric: Any, cols: Columns) -> None:
        """Append one metric's data points."""
        name = text(metric.get("name"), "name")
        data = [f for f in METRIC_DATA if metric.get(f) is not None]
        if len(data) > 1:
            raise FieldError(data[1], "metric has more than one data field")
        code = cols.code(name) if data else 0
        for field in data:
            for point in arr(obj(metric[field], field).get("dataPoints"), "dataPoints"):
                self.start.append(timestamp(point.get("timeUnixNano"), "timeUnixNano"))
                self.name.append(code)
                self.value.append(point_value(field, point))
                exemplars = arr(point.get("exemplars"), "exemplars")
                first = element(exemplars[0], "exemplars[0]") if exemplars else {}
                hi, lo = trace_id(first.get("traceId"))
                self.ex_hi.append(hi)
                self.ex_lo.append(lo)
                self.ex_span.append(span_id(first.get("spanId")))
                self.attributes.append(point.get("attributes"))


def _attributes(lists: Sequence[Any], cols: Columns) -> None:
    """Every item's attributes (a KeyValue list each) into the ragged columns."""
    if None in lists:
        lists = [() if a is None else a for a in lists]
    if not {list, tuple}.issuperset(map(type, lists)):
        raise FieldError("attributes", "attributes must be an array")
    kvs = list(chain.from_iterable(lists))
    pairs = [(kv.get("key"), kv.get("value")) for kv in kvs]
    keys, values = zip(*pairs, strict=True) if pairs else ((), ())
    strings: list[Any] = [_string_value(v) for v in values]
    if {str}.issuperset(map(type, strings)):
        texts, numbers = strings, cols.numbers_of(strings)
    else:
        plains = [
            sv if type(sv) is str else any_value(v) for v, sv in zip(values, strings, strict=True)
        ]
        texts, numbers = cols.texts_numbers(plains)
    cols.set_attributes(list(map(len, lists)), _texts(keys, "key"), texts, numbers)


def _bodies(values: Sequence[Any]) -> Sequence[str]:
    """Log bodies as text."""
    strings: list[Any] = [_string_value(v) for v in values]
    if {str}.issuperset(map(type, strings)):
        return strings
    return [
        sv if type(sv) is str else body_text(any_value(v, "body"))
        for v, sv in zip(values, strings, strict=True)
    ]


def _string_value(value: Any) -> Any:
    """The ``stringValue`` of an AnyValue that holds only that, else None."""
    return value.get("stringValue") if type(value) is dict and len(value) == 1 else None


def _texts(values: Sequence[Any], where: str) -> Sequence[str]:
    """A column of string fields (absent ones "")."""
    if {str}.issuperset(map(type, values)):
        return values
    return [text(v, where) for v in values]


def _times(values: Sequence[Any], where: str) -> list[int]:
    """A column of ``*UnixNano`` fields; the range is checked on the built batch."""
    if None in values:
        values = [0 if v is None else v for v in values]
    if {str, int}.issuperset(map(type, values)):
        return list(map(int, values))
    return [timestamp(v, where) for v in values]


def _enums(values: Sequence[Any], valid: frozenset[int], convert: Callable[[Any], int]) -> Any:
    """A column of enum fields, by number or name."""
    if None in values:
        values = [0 if v is None else v for v in values]
    if {int}.issuperset(map(type, values)) and valid.issuperset(values):
        return values
    return [convert(v) for v in values]


def _trace_ids(values: Sequence[Any]) -> tuple[U64, U64]:
    """Hex trace ids as (high, low) columns."""
    words = _hex_words(values, 32)
    return words[:, 0].copy(), words[:, 1].copy()


def _span_ids(values: Sequence[Any]) -> U64:
    """Hex span ids as a column."""
    return _hex_words(values, 16)[:, 0].copy()


def _hex_words(values: Sequence[Any], digits: int) -> U64:
    """Hex ids as 64-bit big-endian words, one row per id (absent ids 0): one fromhex call."""
    n = len(values)
    if None in values or "" in values:
        zero = "0" * digits
        values = [zero if v is None or v == "" else v for v in values]
    if {str}.issuperset(map(type, values)) and {digits}.issuperset(map(len, values)):
        raw = bytes.fromhex("".join(values))
        # fromhex skips whitespace, so a short result means an id held some.
        if len(raw) * 2 == n * digits:
            return np.frombuffer(raw, ">u8").astype(np.uint64).reshape(n, digits // 16)
    raise ValueError("an id is not hex of the right length")


_DECODERS: dict[Signal, Callable[[list[Any], Columns], int]] = {
    Signal.SPAN: _spans,
    Signal.LOG: _logs,
    Signal.METRIC: _metrics,
}
