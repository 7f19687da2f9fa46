"""Field rules of the OTLP JSON encoding, and the validator that names the first broken field.

The encoding is the collector's (protojson with OTLP's exceptions): camelCase keys; trace and
span ids as hex; 64-bit integers as strings or numbers; enums as numbers or names; doubles as
numbers or the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``; bytes as base64. ``null``
means absent; otherwise a value must have its field's type (an array element must be an
object). Fields the decoder does not read are not checked, as the collector's own reader skips
unknown fields; of a point's exemplars only the first is read, of a log record's times
``observedTimeUnixNano`` only when ``timeUnixNano`` is absent or 0.

:func:`find_defect` is the authority on what is malformed. The decoder's fast path assumes a
well-formed document and asks it *where* when something breaks; property tests check that the
fast path accepts nothing this validator rejects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sidecar.decode.values import (
    I64_MAX,
    SEVERITIES,
    SPAN_KINDS,
    STATUS_CODES,
    Plain,
    base64_bytes,
    enum_number,
    point_mean,
    split128,
)
from sidecar.evidence.batch import Signal

#: The top-level key of each signal, and the keys down to its items.
SIGNAL_KEYS = {"resourceSpans": Signal.SPAN, "resourceLogs": Signal.LOG,
               "resourceMetrics": Signal.METRIC}  # fmt: skip
TOP_KEYS = {signal: key for key, signal in SIGNAL_KEYS.items()}
SCOPES = {Signal.SPAN: "scopeSpans", Signal.LOG: "scopeLogs", Signal.METRIC: "scopeMetrics"}
ITEMS = {Signal.SPAN: "spans", Signal.LOG: "logRecords", Signal.METRIC: "metrics"}
#: Metric data fields (a metric has at most one) and the point fields that give its value.
METRIC_DATA = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")
_NUMBER_DATA = frozenset({"gauge", "sum"})
_ANY_FIELDS = frozenset(
    {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue", "kvlistValue",
     "bytesValue"}
)  # fmt: skip
_MAX_DEPTH = 64
_DOUBLE_WORDS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class FieldError(Exception):
    """A field breaks the encoding: ``where`` is its path below the current object."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where = where
        self.reason = reason


def json_kind(value: object) -> str:
    """The JSON type name of a parsed value (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def signal_of(doc: object) -> Signal:
    """The signal of a document from its top-level key; FieldError when it has none or two."""
    if not isinstance(doc, dict):
        raise FieldError("", f"expected an object with {_SIGNAL_LIST}, got {json_kind(doc)}")
    present = [k for k in SIGNAL_KEYS if k in doc]
    if len(present) != 1:
        if present:
            reason = f"has both {present[0]} and {present[1]}; one document holds one signal"
        else:
            reason = f"expected one of {_SIGNAL_LIST}"
        raise FieldError("", reason)
    return SIGNAL_KEYS[present[0]]


_SIGNAL_LIST = "resourceSpans, resourceLogs or resourceMetrics"


def obj(value: Any, where: str) -> dict[str, Any]:
    """An object field ({} when absent)."""
    if value is None:
        return {}
    return element(value, where)


def element(value: Any, where: str) -> dict[str, Any]:
    """An object that must be there (an array element)."""
    if type(value) is not dict:
        raise FieldError(where, f"{_leaf(where)} must be an object, got {json_kind(value)}")
    return value


def arr(value: Any, where: str) -> list[Any]:
    """An array field ([] when absent)."""
    if value is None:
        return []
    if type(value) is not list:
        raise FieldError(where, f"{_leaf(where)} must be an array, got {json_kind(value)}")
    return value


def text(value: Any, where: str) -> str:
    """A string field ("" when absent)."""
    if value is None:
        return ""
    if type(value) is not str:
        raise FieldError(where, f"{_leaf(where)} must be a string, got {json_kind(value)}")
    return value


def trace_id(value: Any, where: str = "traceId") -> tuple[int, int]:
    """A hex trace id as (high, low); (0, 0) when absent."""
    return split128(_hex_id(value, 16, where))


def span_id(value: Any, where: str = "spanId") -> int:
    """A hex span id; 0 when absent."""
    return _hex_id(value, 8, where)


def _hex_id(value: Any, size: int, where: str) -> int:
    if value is None or value == "":
        return 0
    if type(value) is str and len(value) == 2 * size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) == size:
            return int.from_bytes(raw, "big")
    shown = repr(value) if type(value) is str else json_kind(value)
    raise FieldError(where, f"{_leaf(where)} {shown} is not {2 * size} hex digits")


def uint64(value: Any, where: str, limit: int = 2**64 - 1) -> int:
    """A 64-bit unsigned integer field given as string or number; 0 when absent."""
    what = "a timestamp (int64 nanoseconds)" if limit == I64_MAX else "an unsigned integer"
    return _integer(value, where, (0, limit), what)


def _integer(value: Any, where: str, bounds: tuple[int, int], what: str) -> int:
    """An integer given as string or whole number within ``bounds``; 0 when absent."""
    if value is None:
        return 0
    number: int | None = None
    if type(value) is str:
        try:
            number = int(value)
        except ValueError:
            number = None
    elif type(value) is int:
        number = value
    elif type(value) is float and value.is_integer():
        number = int(value)
    if number is None or not bounds[0] <= number <= bounds[1]:
        raise FieldError(where, f"{_leaf(where)} {value!r} is not {what}")
    return number


def timestamp(value: Any, where: str) -> int:
    """A ``*UnixNano`` field: unsigned, and within int64 (the batch's time columns)."""
    return uint64(value, where, I64_MAX)


def double(value: Any, where: str) -> float:
    """A double field: a JSON number, or a string holding one (NaN and infinities included)."""
    if value is None:
        return 0.0
    if type(value) is float or type(value) is int:
        return float(value)
    if type(value) is str:
        word = _DOUBLE_WORDS.get(value)
        if word is not None:
            return word
        try:
            return float(value)
        except ValueError:
            pass
    raise FieldError(where, f"{_leaf(where)} {value!r} is not a number")


def int64(value: Any, where: str) -> int:
    """A signed 64-bit integer given as string or number; 0 when absent."""
    return _integer(value, where, (-(2**63), I64_MAX), "a 64-bit integer")


def span_kind(value: Any, where: str = "kind") -> int:
    """A SpanKind by number or name; 0 when absent."""
    return _enum(value, SPAN_KINDS, "a SpanKind (0-5 or SPAN_KIND_*)", where)


def status_code(value: Any, where: str = "status.code") -> int:
    """A status code by number or name; 0 when absent."""
    return _enum(value, STATUS_CODES, "a StatusCode (0-2 or STATUS_CODE_*)", where)


def severity(value: Any, where: str = "severityNumber") -> int:
    """A SeverityNumber by number or name; 0 when absent."""
    return _enum(value, SEVERITIES, "a SeverityNumber (0-24 or SEVERITY_NUMBER_*)", where)


def _enum(value: Any, names: dict[str, int], what: str, where: str) -> int:
    if value is None:
        return 0
    number = enum_number(value, names)
    if number is None:
        raise FieldError(where, f"{_leaf(where)} {value!r} is not {what}")
    return number


def any_value(value: Any, where: str = "value", depth: int = 0) -> Plain:
    """An AnyValue object as plain Python (None when empty; bytes as bytes)."""
    value = obj(value, where)
    if not value:
        return None
    if len(value) != 1:
        fields = sorted(k for k in value if k in _ANY_FIELDS)
        if len(fields) > 1:
            raise FieldError(where, f"AnyValue has more than one of {', '.join(fields)}")
        unknown = sorted(k for k in value if k not in _ANY_FIELDS)
        raise FieldError(f"{where}.{unknown[0]}", f"unknown AnyValue field {unknown[0]!r}")
    field, inner = next(iter(value.items()))
    at = f"{where}.{field}"
    if field not in _ANY_FIELDS:
        raise FieldError(at, f"unknown AnyValue field {field!r}")
    if field == "stringValue":
        return text(inner, at)
    if field == "intValue":
        return int64(inner, at)
    if field == "doubleValue":
        return double(inner, at)
    if field == "boolValue":
        if inner is None or type(inner) is bool:
            return bool(inner)
        raise FieldError(at, f"boolValue {inner!r} is not true or false")
    if field == "bytesValue":
        raw = base64_bytes(text(inner, at))
        if raw is None:
            raise FieldError(at, f"bytesValue {inner!r} is not base64")
        return raw
    if depth >= _MAX_DEPTH:
        raise FieldError(at, f"AnyValue nested deeper than {_MAX_DEPTH} levels")
    values = arr(obj(inner, at).get("values"), f"{at}.values")
    if field == "arrayValue":
        return [any_value(v, f"{at}.values[{i}]", depth + 1) for i, v in enumerate(values)]
    return dict(key_values(values, f"{at}.values", depth + 1))


def key_values(items: Any, where: str = "attributes", depth: int = 0) -> list[tuple[str, Plain]]:
    """A KeyValue list (attributes) as (key, plain value) pairs, in order."""
    pairs = []
    for i, item in enumerate(arr(items, where)):
        at = f"{where}[{i}]"
        kv = element(item, at)
        key = text(kv.get("key"), f"{at}.key")
        pairs.append((key, any_value(kv.get("value"), f"{at}.value", depth)))
    return pairs


def find_defect(doc: Any) -> tuple[str, str] | None:
    """The path and reason of the first malformed field of a document, or None."""
    try:
        signal = signal_of(doc)
        key = TOP_KEYS[signal]
        scopes, items = SCOPES[signal], ITEMS[signal]
        for i, rs in enumerate(arr(doc[key], key)):
            rpath = f"{key}[{i}]"
            _within(rpath, _check_resource, rs)
            for j, ss in enumerate(arr(rs.get(scopes), f"{rpath}.{scopes}")):
                spath = f"{rpath}.{scopes}[{j}]"
                for k, item in enumerate(arr(element(ss, spath).get(items), f"{spath}.{items}")):
                    _within(f"{spath}.{items}[{k}]", _CHECKS[signal], item)
    except FieldError as bad:
        return bad.where, bad.reason
    return None


def _within(path: str, check: Any, value: Any) -> None:
    """Run a check on an object, prefixing the path of anything it finds."""
    try:
        check(element(value, path))
    except FieldError as bad:
        if bad.where == path or bad.where.startswith(path + "."):
            raise
        raise FieldError(f"{path}.{bad.where}", bad.reason) from None


def _check_resource(rs: dict[str, Any]) -> None:
    key_values(obj(rs.get("resource"), "resource").get("attributes"), "resource.attributes")


def _check_span(span: dict[str, Any]) -> None:
    trace_id(span.get("traceId"))
    span_id(span.get("spanId"))
    span_id(span.get("parentSpanId"), "parentSpanId")
    text(span.get("name"), "name")
    span_kind(span.get("kind"))
    timestamp(span.get("startTimeUnixNano"), "startTimeUnixNano")
    timestamp(span.get("endTimeUnixNano"), "endTimeUnixNano")
    status_code(obj(span.get("status"), "status").get("code"))
    key_values(span.get("attributes"))


def _check_log(rec: dict[str, Any]) -> None:
    if not timestamp(rec.get("timeUnixNano"), "timeUnixNano"):
        timestamp(rec.get("observedTimeUnixNano"), "observedTimeUnixNano")
    severity(rec.get("severityNumber"))
    any_value(rec.get("body"), "body")
    trace_id(rec.get("traceId"))
    span_id(rec.get("spanId"))
    text(rec.get("eventName"), "eventName")
    key_values(rec.get("attributes"))


def _check_metric(metric: dict[str, Any]) -> None:
    text(metric.get("name"), "name")
    data = [k for k in METRIC_DATA if metric.get(k) is not None]
    if len(data) > 1:
        raise FieldError(data[1], f"metric has both {data[0]} and {data[1]}")
    for field in data:
        where = f"{field}.dataPoints"
        for i, point in enumerate(arr(obj(metric[field], field).get("dataPoints"), where)):
            _within(f"{where}[{i}]", _point_check(field), point)


def _point_check(field: str) -> Callable[[dict[str, Any]], None]:
    def check(point: dict[str, Any]) -> None:
        timestamp(point.get("timeUnixNano"), "timeUnixNano")
        point_value(field, point)
        exemplars = arr(point.get("exemplars"), "exemplars")
        exemplar = element(exemplars[0], "exemplars[0]") if exemplars else {}
        trace_id(exemplar.get("traceId"), "exemplars[0].traceId")
        span_id(exemplar.get("spanId"), "exemplars[0].spanId")
        key_values(point.get("attributes"))

    return check


def point_value(field: str, point: dict[str, Any]) -> float:
    """A point's value: gauge/sum number, histogram/summary ``sum / count`` (NaN if unknown)."""
    if field in _NUMBER_DATA:
        as_double, as_int = point.get("asDouble"), point.get("asInt")
        if as_double is not None and as_int is not None:
            raise FieldError("asInt", "point has both asDouble and asInt")
        if as_int is not None:
            return float(int64(as_int, "asInt"))
        if as_double is not None:
            return double(as_double, "asDouble")
        return float("nan")
    total = point.get("sum")
    count = uint64(point.get("count"), "count")
    # Histogram sums are optional (absent = unknown); a summary's sum is a plain double.
    if total is None and field != "summary":
        return point_mean(None, count)
    return point_mean(double(total, "sum"), count)


_CHECKS = {Signal.SPAN: _check_span, Signal.LOG: _check_log, Signal.METRIC: _check_metric}


def _leaf(where: str) -> str:
    """The last field name of a path (``a[0].traceId`` -> ``traceId``)."""
    leaf = where.rsplit(".", 1)[-1]
    return leaf.split("[", 1)[0] if leaf.endswith("]") and not leaf.startswith("[") else leaf
