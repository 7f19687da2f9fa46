"""OTLP JSON decoding: real recordings, column semantics, file layouts and malformed input.

The Online Boutique recordings under /work/shared/data/online-boutique come from the Nezha
paper (FSE 2023, IntelligentDDS/Nezha, MIT license), converted to OTLP JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.decode import (
    OtlpDecodeError,
    decode_document,
    decode_json_files,
    iter_documents,
    iter_items,
)
from sidecar.decode.json_fields import find_defect
from sidecar.evidence.batch import BatchBuilder, EvidenceBatch, Signal, SpanKind, StringPool

DATA = Path("/work/shared/data/online-boutique")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="Online Boutique recordings absent")

T1 = "5b8efff798038103d269b633813fc60c"
S1 = "eee19b7ec3c1b174"
S2 = "eee19b7ec3c1b173"


def kv(key: str, value: Any) -> dict[str, Any]:
    """One OTLP JSON attribute from a Python value."""
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def spans_doc(*spans: dict[str, Any], resource: Any = None) -> dict[str, Any]:
    """A traces document: one resource (service checkout unless given), one scope."""
    res = resource if resource is not None else [kv("service.name", "checkout")]
    scope = {"scope": {"name": "t"}, "spans": list(spans)}
    return {"resourceSpans": [{"resource": {"attributes": res}, "scopeSpans": [scope]}]}


def span(name: str = "PlaceOrder", **fields: Any) -> dict[str, Any]:
    """A span with ids, kind SERVER and a 5 ms duration, plus ``fields``."""
    base = {"traceId": T1, "spanId": S1, "parentSpanId": S2, "name": name, "kind": 2,
            "startTimeUnixNano": "1700000000000000000",
            "endTimeUnixNano": "1700000000005000000"}  # fmt: skip
    return base | fields


def decode(doc: Any, keys: tuple[str, ...] = ()) -> EvidenceBatch:
    return decode_document(doc, keys, source="t.json")


def error_of(doc: Any) -> str:
    with pytest.raises(OtlpDecodeError) as info:
        decode(doc)
    return str(info.value)


# --- the real recordings ------------------------------------------------------------------


def _count_items(doc: dict[str, Any]) -> int:
    return sum(1 for _ in iter_items(doc))


@needs_data
@pytest.mark.parametrize(
    ("folder", "signal", "rows"),
    [
        ("baseline", "traces", 22969),
        ("baseline", "metrics", 120),
        ("fault-currency-cpu", "logs", 13134),
        ("fault-currency-cpu", "metrics", 240),
        ("fault-currency-cpu", "traces", 12033),
    ],
)
def test_real_recordings_one_row_per_item(folder: str, signal: str, rows: int) -> None:
    path = DATA / folder / f"{signal}.json"
    (document, batch), *rest = list(decode_json_files([path], ()))
    assert rest == []
    assert document.line == 1 and document.size == path.stat().st_size
    assert len(batch) == rows == _count_items(document.doc)
    assert set(batch.signal.tolist()) == {Signal[{"traces": "SPAN", "logs": "LOG",
                                                   "metrics": "METRIC"}[signal]]}  # fmt: skip
    services = {batch.pool[int(c)] for c in np.unique(batch.service)}
    assert services == {"adservice", "cartservice", "checkoutservice", "currencyservice",
                        "emailservice", "frontend", "paymentservice", "productcatalogservice",
                        "recommendationservice", "shippingservice"}  # fmt: skip


@needs_data
def test_real_spans_columns_match_the_document() -> None:
    doc = json.loads((DATA / "baseline" / "traces.json").read_bytes())
    batch = decode(doc, ("k8s.pod.name",))
    first = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert f"{int(batch.trace_hi[0]):016x}{int(batch.trace_lo[0]):016x}" == first["traceId"]
    assert f"{int(batch.span_id[0]):016x}" == first["spanId"]
    assert f"{int(batch.parent_id[0]):016x}" == first["parentSpanId"]
    assert int(batch.start_ns[0]) == int(first["startTimeUnixNano"])
    assert int(batch.duration_ns[0]) == 16_898_589
    assert batch.text("name", 0) == "hipstershop.AdService/GetAds"
    assert batch.text("service", 0) == "adservice"
    assert batch.kind[0] == SpanKind.SERVER
    assert batch.attributes_of(0) == {"k8s.pod.name": "adservice-5f6585d649-fnmft"}
    assert batch.text("k8s.pod.name", 0) == "adservice-5f6585d649-fnmft"
    # No span status was recorded, and every trace id is a real one.
    assert not batch.status.any() and batch.trace_hi.all()
    # Roots are exactly the spans without a parent id.
    roots = sum(not s.get("parentSpanId") for s in iter_items(doc))
    assert int((batch.parent_id == 0).sum()) == roots == 502


@needs_data
def test_real_logs_join_their_spans_by_ids() -> None:
    folder = DATA / "fault-currency-cpu"
    ((_, spans),) = decode_json_files([folder / "traces.json"], ())
    ((_, logs),) = decode_json_files([folder / "logs.json"], ())
    span_keys = set(zip(spans.trace_hi.tolist(), spans.trace_lo.tolist(), spans.span_id.tolist(),
                        strict=True))  # fmt: skip
    log_keys = list(zip(logs.trace_hi.tolist(), logs.trace_lo.tolist(), logs.span_id.tolist(),
                        strict=True))  # fmt: skip
    assert sum(k in span_keys for k in log_keys) == len(logs) == 13134
    assert (logs.start_ns == logs.end_ns).all()
    assert logs.text("body", 0).startswith('{"log":"05:18:42.995 INFO  - TraceID: 04c87ec9')


@needs_data
def test_real_metrics_keep_values_and_nan_literals() -> None:
    path = DATA / "fault-currency-cpu" / "metrics.json"
    ((document, batch),) = decode_json_files([path], ())
    points = list(iter_items(document.doc))
    expected = [p["asDouble"] for p in points]
    assert np.array_equal(batch.value, np.asarray(expected, np.float64), equal_nan=True)
    assert int(np.isnan(batch.value).sum()) == 3  # the recording's bare NaN literals
    assert batch.text("name", 0) == "nezha.pod.cpu.usage_rate"
    assert (batch.duration_ns == 0).all()


# --- column semantics -----------------------------------------------------------------------


def test_dense_attributes_fall_back_to_the_resource() -> None:
    doc = spans_doc(
        span(attributes=[kv("sea.context", "billing")]),
        span(),
        resource=[kv("service.name", "checkout"), kv("sea.context", "orders")],
    )
    batch = decode(doc, ("sea.context", "sea.flow"))
    assert [batch.text("sea.context", i) for i in range(2)] == ["billing", "orders"]
    assert [batch.text("sea.flow", i) for i in range(2)] == ["", ""]
    # Resource attributes are not copied into the rows' own attributes.
    assert batch.attributes_of(1) == {}


def test_binding_columns_prefer_current_semantic_conventions() -> None:
    doc = spans_doc(
        span(attributes=[kv("http.method", "GET"), kv("http.route", "/cart")]),
        span(attributes=[kv("http.method", "GET"), kv("http.request.method", "POST")]),
        span(
            attributes=[
                kv("rpc.service", "hipstershop.CartService"),
                kv("rpc.method", "GetCart"),
                kv("messaging.destination", "old"),
                kv("messaging.destination.name", "orders"),
            ]
        ),
    )
    batch = decode(doc, ("http.method",))
    assert [batch.text("http_method", i) for i in range(3)] == ["GET", "POST", ""]
    assert batch.text("http_route", 0) == "/cart"
    assert batch.text("rpc_service", 2) == "hipstershop.CartService"
    assert batch.text("rpc_method", 2) == "GetCart"
    assert batch.text("messaging_destination", 2) == "orders"
    # The dense column shows the key itself, not the binding fallback.
    assert [batch.text("http.method", i) for i in range(3)] == ["GET", "GET", ""]


def test_enum_names_and_status() -> None:
    doc = spans_doc(
        span(kind="SPAN_KIND_CLIENT", status={"code": "STATUS_CODE_ERROR", "message": "boom"}),
        span(kind=None, status={}),
    )
    batch = decode(doc)
    assert batch.kind.tolist() == [3, 0]
    assert batch.status.tolist() == [2, 0]


def test_attribute_values_text_and_numbers() -> None:
    attrs = [
        kv("s", "500"), kv("i", 42), kv("d", 2.0), kv("f", 0.25), kv("b", True),
        {"key": "bytes", "value": {"bytesValue": "aGk"}},
        {"key": "arr",
         "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": 1}]}}},
        {"key": "kvl", "value": {"kvlistValue": {"values": [kv("x", 1), kv("y", "z")]}}},
        {"key": "empty", "value": {}},
        {"key": "nan", "value": {"doubleValue": "NaN"}},
    ]  # fmt: skip
    batch = decode(spans_doc(span(attributes=attrs)))
    assert batch.attributes_of(0) == {
        "s": "500", "i": "42", "d": "2", "f": "0.25", "b": "true", "bytes": "aGk=",
        "arr": "a,1", "kvl": '{"x":1,"y":"z"}', "empty": "", "nan": "nan",
    }  # fmt: skip
    numbers = batch.attr_numbers.tolist()
    assert numbers[:4] == [500.0, 42.0, 2.0, 0.25]
    assert all(math.isnan(x) for x in numbers[4:])


def test_same_rules_as_batch_builder() -> None:
    attrs = {"s": "500", "i": 42, "d": 2.0, "f": 0.25, "b": False, "l": "x"}
    doc = spans_doc(span(attributes=[kv(k, v) for k, v in attrs.items()]),
                    span(name="Other", attributes=[kv("sea.flow", "checkout")]))  # fmt: skip
    keys = ("sea.flow", "i")
    pool = StringPool()
    decoded = decode_document(doc, keys, pool)
    builder = BatchBuilder(keys, StringPool())
    common = {"trace_hi": int(T1[:16], 16), "trace_lo": int(T1[16:], 16), "span_id": int(S1, 16),
              "parent_id": int(S2, 16), "start_ns": 1700000000000000000,
              "end_ns": 1700000000005000000, "kind": 2}  # fmt: skip
    for name, row_attrs in (("PlaceOrder", attrs), ("Other", {"sea.flow": "checkout"})):
        service = builder.pool.code("checkout")
        builder.add(common | {"name": builder.pool.code(name), "service": service}, row_attrs)
    built = builder.build()
    for column in ("trace_hi", "trace_lo", "span_id", "parent_id", "start_ns", "end_ns", "kind",
                   "attr_offsets", "attr_numbers"):  # fmt: skip
        assert np.array_equal(getattr(decoded, column), getattr(built, column), equal_nan=True)
    for row in range(2):
        assert decoded.attributes_of(row) == built.attributes_of(row)
        for column in ("name", "service", "sea.flow", "i"):
            assert decoded.text(column, row) == built.text(column, row)


def test_logs_event_names_times_and_bodies() -> None:
    records = [
        {"timeUnixNano": "5", "severityNumber": 17, "body": {"stringValue": "hi"},
         "eventName": "order.placed", "attributes": [kv("event.name", "ignored")]},
        {"observedTimeUnixNano": "7", "severityNumber": "SEVERITY_NUMBER_WARN",
         "body": {"kvlistValue": {"values": [kv("a", 1)]}}, "attributes": [kv("event.name", "e2")],
         "traceId": T1, "spanId": S1},
        {"timeUnixNano": 9, "body": {"arrayValue": {"values": [{"stringValue": "x"}]}}},
    ]  # fmt: skip
    doc = {"resourceLogs": [{"resource": {"attributes": [kv("service.name", "cart")]},
                             "scopeLogs": [{"logRecords": records}]}]}  # fmt: skip
    batch = decode(doc)
    assert batch.start_ns.tolist() == batch.end_ns.tolist() == [5, 7, 9]
    assert batch.severity.tolist() == [17, 13, 0]
    assert [batch.text("event_name", i) for i in range(3)] == ["order.placed", "e2", ""]
    assert [batch.text("name", i) for i in range(3)] == ["order.placed", "e2", ""]
    assert [batch.text("body", i) for i in range(3)] == ["hi", '{"a":1}', '["x"]']
    assert f"{int(batch.trace_hi[1]):016x}{int(batch.trace_lo[1]):016x}" == T1
    assert batch.trace_hi[0] == 0 and batch.span_id[2] == 0


def test_metric_points_values_and_exemplars() -> None:
    ex = {"traceId": T1, "spanId": S1, "asDouble": 1.0}
    metrics = [
        {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "10", "asInt": "3"},
                                               {"timeUnixNano": "11", "asDouble": 0.5,
                                                "exemplars": [ex]}]}},
        {"name": "s", "sum": {"dataPoints": [{"timeUnixNano": "12"}], "isMonotonic": True}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "4", "sum": 10.0,
                                                    "attributes": [kv("route", "/a")]},
                                                   {"count": "0", "sum": 0}]}},
        {"name": "e", "exponentialHistogram": {"dataPoints": [{"count": 2}]}},
        {"name": "q", "summary": {"dataPoints": [{"count": "2"}]}},
        {"name": "empty"},
    ]  # fmt: skip
    doc = {"resourceMetrics": [{"resource": {}, "scopeMetrics": [{"metrics": metrics}]}]}
    batch = decode(doc)
    assert [batch.text("name", i) for i in range(len(batch))] == ["g", "g", "s", "h", "h", "e", "q"]
    values = batch.value.tolist()
    assert values[:2] == [3.0, 0.5] and values[3] == 2.5 and values[6] == 0.0
    assert math.isnan(values[2]) and math.isnan(values[4]) and math.isnan(values[5])
    assert batch.start_ns.tolist()[:3] == [10, 11, 12]
    assert f"{int(batch.ex_trace_hi[1]):016x}{int(batch.ex_trace_lo[1]):016x}" == T1
    assert f"{int(batch.ex_span_id[1]):016x}" == S1 and batch.ex_span_id[0] == 0
    assert batch.attributes_of(3) == {"route": "/a"}
    assert batch.text("service", 0) == ""


def test_documents_share_a_pool() -> None:
    pool = StringPool()
    a = decode_document(spans_doc(span("A")), (), pool)
    b = decode_document(spans_doc(span("B"), span("A")), (), pool)
    assert a.pool is b.pool is pool
    assert b.name[1] == a.name[0]


# --- files --------------------------------------------------------------------------------


def _line(doc: dict[str, Any]) -> str:
    return json.dumps(doc, separators=(",", ":"))


def test_file_layouts(tmp_path: Path) -> None:
    doc = spans_doc(span())
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps(doc, indent=2))
    lines = tmp_path / "lines.jsonl"
    lines.write_text(f"{_line(doc)}\n\n{_line(spans_doc(span(), span()))}\n")
    single = tmp_path / "single.json"
    single.write_text(_line(doc))
    assert [(d.line, d.signal) for d in iter_documents(whole)] == [(1, Signal.SPAN)]
    assert [d.line for d in iter_documents(lines)] == [1, 3]
    assert [len(b) for _, b in decode_json_files([whole, lines, single], ())] == [1, 1, 2, 1]


def test_a_broken_line_costs_only_itself(tmp_path: Path) -> None:
    good = _line(spans_doc(span()))
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([good, good[:30], good, '{"resourceLogs": 3}', good]) + "\n")
    errors: list[OtlpDecodeError] = []
    batches = list(decode_json_files([path], (), on_error=errors.append))
    assert [d.line for d, _ in batches] == [1, 3, 5]
    assert [str(e) for e in errors] == [
        f"{path}: line 2: invalid JSON: Expecting value (column 31)",
        f"{path}: line 4, resourceLogs: resourceLogs must be an array, got number",
    ]
    assert (errors[0].source, errors[0].position) == (str(path), "line 2")
    with pytest.raises(OtlpDecodeError, match="line 2: invalid JSON"):
        list(decode_json_files([path], ()))


def test_a_broken_first_line_is_still_a_json_lines_file(tmp_path: Path) -> None:
    good = _line(spans_doc(span()))
    path = tmp_path / "t.jsonl"
    path.write_text(f"{good[:-1]}\n{good}\n")
    errors: list[OtlpDecodeError] = []
    assert [d.line for d in iter_documents(path, errors.append)] == [2]
    assert [e.position for e in errors] == ["line 1"]


def test_a_broken_pretty_printed_document_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{\n  "resourceSpans": [\n    {"resource": {}\n  ]\n}\n')
    with pytest.raises(OtlpDecodeError) as info:
        list(iter_documents(path))
    assert str(info.value) == f"{path}: line 4: invalid JSON: Expecting ',' delimiter (column 3)"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(b'{"resourceSpans": ["\xff"]}')
    with pytest.raises(OtlpDecodeError, match=r"line 1: invalid JSON: not UTF-8 \(invalid start"):
        list(iter_documents(path))


# --- malformed documents: exact messages --------------------------------------------------

SPAN_AT = "t.json: line 1, resourceSpans[0].scopeSpans[0].spans[1]"
NOT_TIME = "is not a timestamp (int64 nanoseconds)"
BIG = "99999999999999999999"


def value(v: dict[str, Any]) -> dict[str, Any]:
    """A span whose only attribute has this AnyValue."""
    return {"attributes": [{"key": "k", "value": v}]}


@pytest.mark.parametrize(
    ("bad", "where", "reason"),
    [
        ({"traceId": "xyz"}, "traceId", "traceId 'xyz' is not 32 hex digits"),
        ({"traceId": T1[:-2] + " 1"}, "traceId", f"traceId '{T1[:-2]} 1' is not 32 hex digits"),
        ({"spanId": 5}, "spanId", "spanId number is not 16 hex digits"),
        ({"parentSpanId": "0x" + S1[2:]}, "parentSpanId",
         f"parentSpanId '0x{S1[2:]}' is not 16 hex digits"),
        ({"name": ["x"]}, "name", "name must be a string, got array"),
        ({"kind": 9}, "kind", "kind 9 is not a SpanKind (0-5 or SPAN_KIND_*)"),
        ({"kind": True}, "kind", "kind True is not a SpanKind (0-5 or SPAN_KIND_*)"),
        ({"status": {"code": "BAD"}}, "status.code",
         "code 'BAD' is not a StatusCode (0-2 or STATUS_CODE_*)"),
        ({"status": "ok"}, "status", "status must be an object, got string"),
        ({"startTimeUnixNano": "-5"}, "startTimeUnixNano", f"startTimeUnixNano '-5' {NOT_TIME}"),
        ({"endTimeUnixNano": BIG}, "endTimeUnixNano", f"endTimeUnixNano '{BIG}' {NOT_TIME}"),
        ({"endTimeUnixNano": 1.5}, "endTimeUnixNano", f"endTimeUnixNano 1.5 {NOT_TIME}"),
        ({"attributes": {"k": "v"}}, "attributes", "attributes must be an array, got object"),
        ({"attributes": [None]}, "attributes[0]", "attributes must be an object, got null"),
        ({"attributes": [{"key": 1}]}, "attributes[0].key", "key must be a string, got number"),
        (value({"bytesValue": "!!"}), "attributes[0].value.bytesValue",
         "bytesValue '!!' is not base64"),
        (value({"intValue": "1.5"}), "attributes[0].value.intValue",
         "intValue '1.5' is not a 64-bit integer"),
        (value({"doubleValue": "x"}), "attributes[0].value.doubleValue",
         "doubleValue 'x' is not a number"),
        (value({"boolValue": "yes"}), "attributes[0].value.boolValue",
         "boolValue 'yes' is not true or false"),
        (value({"stringValue": "a", "intValue": 1}), "attributes[0].value",
         "AnyValue has more than one of intValue, stringValue"),
        (value({"textValue": "a"}), "attributes[0].value.textValue",
         "unknown AnyValue field 'textValue'"),
        (value({"arrayValue": {"values": [{"stringValue": 2}]}}),
         "attributes[0].value.arrayValue.values[0].stringValue",
         "stringValue must be a string, got number"),
    ],
)  # fmt: skip
def test_malformed_spans(bad: dict[str, Any], where: str, reason: str) -> None:
    assert error_of(spans_doc(span(), span(**bad))) == f"{SPAN_AT}.{where}: {reason}"


def logs_doc(record: dict[str, Any]) -> dict[str, Any]:
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}]}


def metrics_doc(metric: dict[str, Any]) -> dict[str, Any]:
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}


LOG_AT = "resourceLogs[0].scopeLogs[0].logRecords[0]"
METRIC_AT = "resourceMetrics[0].scopeMetrics[0].metrics[0]"
SIGNALS = "resourceSpans, resourceLogs or resourceMetrics"


@pytest.mark.parametrize(
    ("doc", "where", "reason"),
    [
        ([], "", f"expected an object with {SIGNALS}, got array"),
        ({}, "", f"expected one of {SIGNALS}"),
        ({"resourceSpans": [], "resourceLogs": []}, "",
         "has both resourceSpans and resourceLogs; one document holds one signal"),
        ({"resourceSpans": [{"scopeSpans": {}}]}, "resourceSpans[0].scopeSpans",
         "scopeSpans must be an array, got object"),
        ({"resourceSpans": [{"scopeSpans": [{"spans": [3]}]}]},
         "resourceSpans[0].scopeSpans[0].spans[0]", "spans must be an object, got number"),
        ({"resourceSpans": [{"resource": {"attributes": [kv("service.name", "a") | value(
            {"intValue": "x"})["attributes"][0]]}}]},
         "resourceSpans[0].resource.attributes[0].value.intValue",
         "intValue 'x' is not a 64-bit integer"),
        (logs_doc({"severityNumber": 99}), f"{LOG_AT}.severityNumber",
         "severityNumber 99 is not a SeverityNumber (0-24 or SEVERITY_NUMBER_*)"),
        (logs_doc({"eventName": 3}), f"{LOG_AT}.eventName",
         "eventName must be a string, got number"),
        (logs_doc({"timeUnixNano": "x"}), f"{LOG_AT}.timeUnixNano",
         f"timeUnixNano 'x' {NOT_TIME}"),
        (metrics_doc({"name": "m", "gauge": {"dataPoints": [{"asDouble": "x"}]}}),
         f"{METRIC_AT}.gauge.dataPoints[0].asDouble", "asDouble 'x' is not a number"),
        (metrics_doc({"name": "m", "gauge": {}, "sum": {}}), f"{METRIC_AT}.sum",
         "metric has both gauge and sum"),
        (metrics_doc({"name": "m", "sum": {"dataPoints": [{"exemplars": [{"spanId": "zz"}]}]}}),
         f"{METRIC_AT}.sum.dataPoints[0].exemplars[0].spanId", "spanId 'zz' is not 16 hex digits"),
        (metrics_doc({"name": "m", "summary": {"dataPoints": [{"count": "-1"}]}}),
         f"{METRIC_AT}.summary.dataPoints[0].count", "count '-1' is not an unsigned integer"),
    ],
)  # fmt: skip
def test_malformed_documents(doc: Any, where: str, reason: str) -> None:
    at = f"line 1, {where}" if where else "line 1"
    assert error_of(doc) == f"t.json: {at}: {reason}"


# --- properties ----------------------------------------------------------------------------

_GOOD = _line(spans_doc(span(attributes=[kv("k", "v"), kv("n", 3)]),
                        span(status={"code": 2}, kind="SPAN_KIND_CLIENT")))  # fmt: skip
_GOODS = [
    json.loads(_GOOD),
    {"resourceLogs": [{"resource": {"attributes": [kv("k", "r")]}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "5", "severityNumber": 9, "body": {"stringValue": "b"}, "traceId": T1,
         "spanId": S1, "eventName": "e", "attributes": [kv("k", "v")]},
        {"observedTimeUnixNano": 6, "body": {"arrayValue": {"values": [{"intValue": 1}]}}},
    ]}]}]},
    {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "1", "asDouble": 1.5,
                                               "exemplars": [{"traceId": T1, "spanId": S1}]}]}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "2", "sum": 3.0,
                                                   "attributes": [kv("k", "v")]}]}},
        {"name": "q", "summary": {"dataPoints": [{"count": 1, "sum": "2"}]}},
    ]}]}]},
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=8)
    | st.sampled_from(["", T1, S1, "SPAN_KIND_SERVER", "NaN", "1700000000000000000"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["traceId", "spanId", "name", "kind", "attributes", "key",
                                       "value", "stringValue", "intValue", "arrayValue",
                                       "values", "status", "code", "startTimeUnixNano",
                                       "scopeSpans", "spans", "resource", "resourceSpans",
                                       "gauge", "dataPoints", "asInt", "bytesValue",
                                       "timeUnixNano", "body", "eventName", "count", "sum",
                                       "exemplars", "severityNumber", "asDouble"]),
                      children, max_size=4),
    max_leaves=20,
)  # fmt: skip


def _mutate(doc: Any, path: list[int], value: Any) -> Any:
    """Replace the value reached by following ``path`` (indices into containers) with value."""
    if not path or not isinstance(doc, dict | list) or not doc:
        return value
    keys = list(doc) if isinstance(doc, dict) else list(range(len(doc)))
    key = keys[path[0] % len(keys)]
    doc[key] = _mutate(doc[key], path[1:], value)
    return doc


def _decode_or_explain(doc: Any) -> None:
    try:
        decode(doc, ("k",))
    except OtlpDecodeError as exc:
        # The validator located the defect (the fast path never fails on its own terms).
        assert not exc.reason.startswith("cannot decode"), exc
    else:
        assert find_defect(doc) is None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_GOODS), st.lists(st.integers(0, 50), max_size=10), json_values)
def test_any_mutation_decodes_or_is_explained(good: Any, path: list[int], value: Any) -> None:
    _decode_or_explain(_mutate(json.loads(json.dumps(good)), path, value))


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_any_json_decodes_or_is_explained(value: Any) -> None:
    _decode_or_explain(value)
    _decode_or_explain({"resourceSpans": value})


@settings(max_examples=200, deadline=None)
@given(st.integers(0, len(_GOOD)), st.binary(max_size=4).map(lambda b: b.replace(b"\n", b"")))
def test_truncated_or_corrupted_files_only_raise_decode_errors(
    tmp_path_factory: pytest.TempPathFactory, cut: int, junk: bytes
) -> None:
    path = tmp_path_factory.mktemp("t") / "t.jsonl"
    data = _GOOD.encode()
    path.write_bytes(data + b"\n" + data[:cut] + junk + b"\n" + data + b"\n")
    errors: list[OtlpDecodeError] = []
    rows = sum(len(b) for _, b in decode_json_files([path], (), on_error=errors.append))
    # The middle line is whole, blank, or one reported error; the others always decode.
    assert rows in {4, 6} and len(errors) <= 1 and not (errors and rows == 6)
