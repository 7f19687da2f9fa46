"""The processor's projection decodes to the batch the OTLP protobuf decoder builds.

Requests are made from OTLP messages by the test projector (``sidecar.testing.project_otlp``,
which follows the comments of proto/behavior/v1/correlation.proto, as the Go processor does)
and compared column by column, by text (the two decoders fill their string pools in different
orders). Slices of the Online Boutique recordings (Nezha, MIT) are included when present.
"""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf.json_format import ParseDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from sidecar.decode.otlp_proto import decode_message
from sidecar.decode.projection import decode_projection
from sidecar.decode.proto_signals import plain
from sidecar.decode.values import body_text, plain_text, text_number
from sidecar.errors import ProjectionError, TelemetryError
from sidecar.evidence.batch import BINDING_COLUMNS, EvidenceBatch, Signal
from sidecar.protocol import correlation_pb2 as pb
from sidecar.testing import otlp_json_to_proto, project_otlp, slice_document

DATA = Path("/work/shared/data/online-boutique")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="Online Boutique recordings absent")
KEYS = ("sea.context", "http.method", "k8s.pod.name", "route", "i", "s")
T1 = "5b8efff798038103d269b633813fc60c"
S1 = "eee19b7ec3c1b174"
P1 = "0102030405060708"
CODE_COLUMNS = ("service", "name", "body", *BINDING_COLUMNS)


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


def texts(batch: EvidenceBatch, codes: np.ndarray) -> list[str]:
    return [batch.pool[int(c)] for c in codes]


def ragged(batch: EvidenceBatch) -> list[list[tuple[str, str, float]]]:
    """Every row's attributes as (key, text, number), NaN as -0.5 so that lists compare."""
    out = []
    for row in range(len(batch)):
        lo, hi = int(batch.attr_offsets[row]), int(batch.attr_offsets[row + 1])
        entries = [
            (batch.pool[int(k)], batch.pool[int(v)], float(x))
            for k, v, x in zip(
                batch.attr_keys[lo:hi],
                batch.attr_values[lo:hi],
                batch.attr_numbers[lo:hi],
                strict=True,
            )
        ]
        out.append([(k, v, -0.5 if math.isnan(x) else x) for k, v, x in entries])
    return out


def assert_same_batch(
    got: EvidenceBatch,
    want: EvidenceBatch,
    *,
    all_attributes: bool = True,
) -> None:
    """Every column of the projection's batch equals the OTLP decoder's, compared by text."""
    assert len(got) == len(want)
    for name in EvidenceBatch.__dataclass_fields__:
        x, y = getattr(got, name), getattr(want, name)
        if name in ("pool", "attr", "attr_offsets", "attr_keys", "attr_values", "attr_numbers"):
            continue
        assert x.dtype == y.dtype, name
        if name in CODE_COLUMNS:
            assert texts(got, x) == texts(want, y), name
        else:
            assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    assert got.attr.keys() == want.attr.keys()
    for key in got.attr:
        assert texts(got, got.attr[key]) == texts(want, want.attr[key]), key
    if all_attributes:
        assert ragged(got) == ragged(want)


def roundtrip(doc: dict[str, Any], keys: tuple[str, ...] = KEYS) -> tuple[EvidenceBatch, ...]:
    message = otlp_json_to_proto(doc)
    request = pb.CorrelateRequest.FromString(project_otlp(message).SerializeToString())
    return decode_projection(request, keys), decode_message(message, keys)


RICH = [
    kv("s", {"stringValue": "500"}),
    kv("i", {"intValue": "-42"}),
    kv("d", {"doubleValue": 2.0}),
    kv("q", {"doubleValue": 0.25}),
    kv("nan", {"doubleValue": "NaN"}),
    kv("inf", {"doubleValue": "-Infinity"}),
    kv("big", {"doubleValue": 1e300}),
    kv("b", {"boolValue": True}),
    kv("y", {"bytesValue": "aGk="}),
    kv("a", {"arrayValue": {"values": [{"stringValue": "x"}, {"doubleValue": 0.5}]}}),
    kv("m", {"kvlistValue": {"values": [kv("k", {"intValue": "1"}), kv("e", {})]}}),
    kv("http.method", {"stringValue": "GET"}),
    kv("http.request.method", {"stringValue": ""}),
    kv("empty", {}),
    kv("word", {"stringValue": "nan"}),
    kv("sp", {"stringValue": " 7 "}),
    kv("rpc.service", {"stringValue": "hipstershop.CartService"}),
    kv("rpc.method", {"stringValue": "GetCart"}),
    kv("s", {"stringValue": "dup"}),
]
RESOURCE = {
    "attributes": [
        kv("service.name", {"stringValue": "cart"}),
        kv("sea.context", {"stringValue": "orders"}),
        kv("k8s.pod.name", {"intValue": "3"}),
    ]
}


def test_spans_with_every_value_kind_and_missing_fields() -> None:
    spans = [
        {
            "traceId": T1,
            "spanId": S1,
            "parentSpanId": P1,
            "name": "a",
            "kind": 3,
            "startTimeUnixNano": "1",
            "endTimeUnixNano": "3",
            "status": {"code": 2},
            "attributes": RICH,
        },
        {"name": "b", "attributes": [kv("sea.context", {"stringValue": "billing"})]},
        {"name": "", "kind": 2},
    ]
    doc = {
        "resourceSpans": [
            {"resource": RESOURCE, "scopeSpans": [{"spans": spans}, {"spans": spans[1:2]}]},
            {"scopeSpans": []},  # a resource without spans: the processor sends no resource
            {"scopeSpans": [{"spans": spans[1:]}]},
        ]
    }
    got, want = roundtrip(doc)
    assert_same_batch(got, want)
    assert got.text("sea.context", 0) == "orders" and got.text("sea.context", 3) == "billing"
    assert got.text("service", 1) == "cart" and got.text("service", 4) == ""
    assert got.text("rpc_method", 0) == "GetCart" and got.text("http_method", 0) == "GET"
    assert got.attributes_of(0)["m"] == '{"k":1,"e":null}'
    numbers = dict(zip(texts(got, got.attr_keys[:19]), got.attr_numbers[:19], strict=True))
    assert numbers["i"] == -42 and numbers["sp"] == 7 and math.isnan(numbers["word"])
    assert math.isnan(numbers["b"]) and numbers["big"] == 1e300 and numbers["inf"] == -math.inf


def test_logs_with_event_names_bodies_and_observed_time() -> None:
    records = [
        {
            "timeUnixNano": "5",
            "severityNumber": 17,
            "body": {"stringValue": "hi"},
            "eventName": "order.placed",
            "traceId": T1,
            "spanId": S1,
        },
        {
            "observedTimeUnixNano": "7",
            "body": {"kvlistValue": {"values": [kv("a", {})]}},
            "attributes": [kv("event.name", {"stringValue": "e2"})],
        },
        {"body": {"arrayValue": {"values": [{"boolValue": False}, {"doubleValue": 1.5}]}}},
        {"body": {"intValue": "12"}, "eventName": "ev", "attributes": RICH},
    ]
    doc = {
        "resourceLogs": [
            {"resource": RESOURCE, "scopeLogs": [{"logRecords": records}]},
            {"scopeLogs": [{"logRecords": records[:1]}]},
        ]
    }
    got, want = roundtrip(doc)
    assert_same_batch(got, want)
    assert texts(got, got.name) == ["order.placed", "e2", "", "ev", "order.placed"]
    assert texts(got, got.body)[1:4] == ['{"a":null}', "[false,1.5]", "12"]


def test_metrics_of_every_data_kind() -> None:
    ex = [{"traceId": T1, "spanId": S1, "asDouble": 1.0}]
    route = kv("route", {"stringValue": "/a"})
    metrics = [
        {
            "name": "g",
            "gauge": {
                "dataPoints": [
                    {"timeUnixNano": "10", "asInt": "3"},
                    {"asDouble": 0.5, "exemplars": ex},
                ]
            },
        },
        {"name": "s", "sum": {"dataPoints": [{"timeUnixNano": "12", "attributes": RICH}]}},
        {
            "name": "h",
            "histogram": {
                "dataPoints": [
                    {"count": "4", "sum": 10.0, "exemplars": ex, "attributes": [route]},
                    {"count": "0"},
                ]
            },
        },
        {"name": "e", "exponentialHistogram": {"dataPoints": [{"count": "2"}]}},
        {"name": "q", "summary": {"dataPoints": [{"count": "2", "sum": 3.0}, {"count": "2"}]}},
        {"name": "nothing"},
    ]
    doc = {
        "resourceMetrics": [
            {"resource": RESOURCE, "scopeMetrics": [{"metrics": metrics}]},
            {"scopeMetrics": [{"metrics": metrics[:1]}]},
        ]
    }
    got, want = roundtrip(doc)
    assert_same_batch(got, want)
    assert got.value[3] == 2.5 and math.isnan(got.value[4]) and got.ex_span_id[1] != 0


def test_an_empty_request_is_an_empty_batch() -> None:
    request = pb.CorrelateRequest(protocol_version=1, signal=pb.SIGNAL_SPANS, strings=[""])
    batch = decode_projection(request, KEYS)
    assert len(batch) == 0 and set(batch.attr) == set(KEYS)


def test_a_keys_only_projection_keeps_the_dense_and_binding_columns() -> None:
    spans = [{"name": "a", "attributes": RICH}]
    doc = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"spans": spans}]}]}
    message = otlp_json_to_proto(doc)
    wanted = {*KEYS, "service.name", "rpc.service", "rpc.method", "http.request.method"}
    got = decode_projection(project_otlp(message, keys=wanted), KEYS)
    assert_same_batch(got, decode_message(message, KEYS), all_attributes=False)
    assert "y" not in got.attributes_of(0)


@needs_data
@pytest.mark.parametrize(
    "name",
    ["baseline/traces.json", "fault-currency-cpu/logs.json", "fault-currency-cpu/metrics.json"],
)
def test_real_recordings_decode_the_same(name: str) -> None:
    doc = slice_document(json.loads((DATA / name).read_bytes()), resources=6, items=400)
    got, want = roundtrip(doc, ("sea.context", "http.route", "rpc.system", "k8s.pod.name"))
    assert len(got) > 50
    assert_same_batch(got, want)


_VALUES = st.one_of(
    st.builds(lambda s: {"stringValue": s}, st.text(max_size=6)),
    st.builds(lambda s: {"stringValue": s}, st.sampled_from(["1", "-2.5", "1e3", "inf", "x"])),
    st.builds(lambda i: {"intValue": str(i)}, st.integers(-(2**63), 2**63 - 1)),
    st.builds(lambda d: {"doubleValue": d}, st.floats(allow_nan=False, allow_infinity=True)),
    st.builds(lambda b: {"boolValue": b}, st.booleans()),
    st.just({}),
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(["s", "i", "x", "http.method"]), _VALUES), max_size=4),
        min_size=1,
        max_size=5,
    )
)
def test_random_attributes_decode_the_same(rows: list[list[tuple[str, dict[str, Any]]]]) -> None:
    spans = [
        {"name": f"n{i}", "attributes": [kv(k, v) for k, v in attrs]}
        for i, attrs in enumerate(rows)
    ]
    doc = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"spans": spans}]}]}
    assert_same_batch(*roundtrip(doc))


# --- malformed requests ------------------------------------------------------------------------


def good_request() -> pb.CorrelateRequest:
    spans = [
        {
            "traceId": T1,
            "spanId": S1,
            "name": "a",
            "startTimeUnixNano": "1",
            "endTimeUnixNano": "2",
            "attributes": [kv("s", {"stringValue": "v"})],
        },
        {"name": "b", "attributes": [kv("i", {"intValue": "4"})]},
    ]
    doc = {
        "resourceSpans": [
            {"resource": RESOURCE, "scopeSpans": [{"spans": spans[:1]}]},
            {"resource": RESOURCE, "scopeSpans": [{"spans": spans[1:]}]},
        ]
    }
    return project_otlp(otlp_json_to_proto(doc))


def _u32(*values: int) -> bytes:
    return np.asarray(values, "<u4").tobytes()


MALFORMED = {
    "wrong version": ("protocol_version", lambda r: setattr(r, "protocol_version", 2)),
    "unknown signal": ("signal", lambda r: setattr(r, "signal", 9)),
    "no signal": ("signal", lambda r: setattr(r, "signal", 0)),
    "rows vs column": ("trace_id", lambda r: setattr(r, "rows", 3)),
    "short column": ("kind", lambda r: setattr(r, "kind", b"\x01")),
    "name code": ("name", lambda r: setattr(r, "name", _u32(1, 999))),
    "strings[0]": ("strings", lambda r: r.strings.__setitem__(0, "x")),
    "no strings": ("strings", lambda r: r.ClearField("strings")),
    "first resource": ("resource_first_row", lambda r: setattr(r, "resource_first_row", _u32(1))),
    "not increasing": (
        "resource_first_row",
        lambda r: setattr(r, "resource_first_row", _u32(0, 0)),
    ),
    "beyond rows": ("resource_first_row", lambda r: setattr(r, "resource_first_row", _u32(0, 2))),
    "no resource": ("resource_first_row", lambda r: r.ClearField("resource_first_row")),
    "counts sum": ("attributes.keys", lambda r: setattr(r.attributes, "counts", _u32(2, 1))),
    "counts owners": ("attributes.counts", lambda r: setattr(r.attributes, "counts", _u32(1))),
    "resource counts": (
        "resource_attributes.counts",
        lambda r: setattr(r.resource_attributes, "counts", _u32(3, 3, 3)),
    ),
    "value type": (
        "attributes.value_types",
        lambda r: setattr(r.attributes, "value_types", b"\x01\x09"),
    ),
    "value code": ("attributes.values", lambda r: setattr(r.attributes, "values", _u32(1, 4000))),
    "empty with text": (
        "attributes.values",
        lambda r: setattr(r.attributes, "value_types", b"\x00\x03"),
    ),
    "int text": ("attributes.values", lambda r: setattr(r.attributes, "value_types", b"\x03\x03")),
    "kind enum": ("kind", lambda r: setattr(r, "kind", b"\x01\x07")),
    "negative time": (
        "end_time_unix_nano",
        lambda r: setattr(r, "end_time_unix_nano", np.asarray([1, -5], "<i8").tobytes()),
    ),
    "odd counts": ("attributes.counts", lambda r: setattr(r.attributes, "counts", b"\x01")),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_requests_name_the_field(case: str) -> None:
    field, mutate = MALFORMED[case]
    request = good_request()
    decode_projection(request, KEYS)  # the unmutated request is fine
    mutate(request)
    with pytest.raises(ProjectionError) as info:
        decode_projection(request, KEYS)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, TelemetryError)


def test_projection_errors_pickle() -> None:
    err = pickle.loads(pickle.dumps(ProjectionError("name", "bad")))
    assert (err.field, err.reason, str(err)) == ("name", "bad", "name: bad")


def test_signals_map_to_batch_signals() -> None:
    request = good_request()
    assert decode_projection(request, KEYS).signal.tolist() == [Signal.SPAN] * 2


# --- the text rules both languages share (proto/testdata/value_text.json) -----------------------

VECTORS = Path(__file__).resolve().parents[3] / "proto" / "testdata" / "value_text.json"


def test_value_text_vectors_agree_with_values_py() -> None:
    """The vectors the Go processor checks itself against are what sidecar/decode/values.py
    makes of each AnyValue, and the projection reads their types' numbers by its rules."""
    cases = json.loads(VECTORS.read_text())["cases"]
    assert len(cases) > 40
    request = pb.CorrelateRequest(
        protocol_version=1,
        signal=pb.SIGNAL_SPANS,
        rows=1,
        strings=[""],
        resource_first_row=np.zeros(1, "<u4").tobytes(),
    )
    codes, types = [], []
    for case in cases:
        value = plain(ParseDict(case["value"], AnyValue()))
        assert plain_text(value) == case["text"], case["name"]
        assert body_text(value) == case["body"], case["name"]
        which = ParseDict(case["value"], AnyValue()).WhichOneof("value")
        expected_type = (
            0
            if which is None
            else pb.ValueType.Value("VALUE_TYPE_" + which.removesuffix("_value").upper())
        )
        assert case["value_type"] == expected_type, case["name"]
        request.strings.append(case["text"])
        # The empty value travels as VALUE_TYPE_EMPTY with code 0.
        codes.append(len(request.strings) - 1 if case["value_type"] else 0)
        types.append(case["value_type"])
    request.attributes.counts = np.asarray([len(cases)], "<u4").tobytes()
    request.attributes.keys = np.asarray(codes, "<u4").tobytes()  # any string will do as a key
    request.attributes.values = np.asarray(codes, "<u4").tobytes()
    request.attributes.value_types = bytes(types)
    batch = decode_projection(request, ())
    for case, number in zip(cases, batch.attr_numbers, strict=True):
        numeric = case["value_type"] in (
            pb.VALUE_TYPE_STRING,
            pb.VALUE_TYPE_INT,
            pb.VALUE_TYPE_DOUBLE,
        )
        want = text_number(case["text"]) if numeric else math.nan
        assert (math.isnan(want) and math.isnan(number)) or want == number, case["name"]
