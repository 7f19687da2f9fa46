"""OTLP protobuf decoding: equal to the JSON decoder, file-exporter framing, malformed input.

Slices of the Online Boutique recordings under /work/shared/data/online-boutique (Nezha paper,
FSE 2023, IntelligentDDS/Nezha, MIT license) are converted to protobuf with ParseDict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from sidecar.decode import (
    OtlpDecodeError,
    decode_document,
    decode_message,
    decode_proto_files,
    decode_request,
    iter_messages,
    sniff_signal,
)
from sidecar.decode.otlp_message import to_message
from sidecar.evidence.batch import EvidenceBatch, Signal
from sidecar.testing import slice_document

DATA = Path("/work/shared/data/online-boutique")
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="Online Boutique recordings absent")
KEYS = ("sea.context", "http.method", "k8s.pod.name", "route")
T1 = "5b8efff798038103d269b633813fc60c"
S1 = "eee19b7ec3c1b174"


def to_proto(doc: dict[str, Any]) -> bytes:
    """An OTLP JSON document as protobuf bytes."""
    return to_message(doc).SerializeToString()


def assert_same(a: EvidenceBatch, b: EvidenceBatch) -> None:
    """Every column, the dense attributes and the string pool are equal."""
    assert len(a) == len(b)
    assert a.pool.values == b.pool.values
    for name in a.__dataclass_fields__:
        x, y = getattr(a, name), getattr(b, name)
        if name == "pool":
            continue
        if name == "attr":
            assert x.keys() == y.keys()
            for k in x:
                assert np.array_equal(x[k], y[k]), k
            continue
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), name
    for row in range(len(a)):
        assert a.attributes_of(row) == b.attributes_of(row)


def both(doc: dict[str, Any]) -> tuple[EvidenceBatch, EvidenceBatch]:
    (key,) = doc
    signal = {"resourceSpans": Signal.SPAN, "resourceLogs": Signal.LOG,
              "resourceMetrics": Signal.METRIC}[key]  # fmt: skip
    return decode_document(doc, KEYS), decode_request(to_proto(doc), signal, KEYS)


@needs_data
@pytest.mark.parametrize(
    "name",
    ["baseline/traces.json", "fault-currency-cpu/logs.json", "fault-currency-cpu/metrics.json"],
)
def test_real_recordings_decode_the_same_in_both_encodings(name: str) -> None:
    doc = slice_document(json.loads((DATA / name).read_bytes()), resources=4, items=300)
    from_json, from_proto = both(doc)
    assert len(from_json) > 50
    assert_same(from_json, from_proto)


def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"key": key, "value": value}


RICH_ATTRIBUTES = [
    kv("s", {"stringValue": "500"}), kv("i", {"intValue": "-42"}), kv("d", {"doubleValue": 2.0}),
    kv("nan", {"doubleValue": "NaN"}), kv("b", {"boolValue": True}),
    kv("y", {"bytesValue": "aGk="}),
    kv("a", {"arrayValue": {"values": [{"stringValue": "x"}, {"doubleValue": 0.5}]}}),
    kv("m", {"kvlistValue": {"values": [kv("k", {"intValue": "1"}), kv("e", {})]}}),
    kv("http.method", {"stringValue": "GET"}), kv("empty", {}),
]  # fmt: skip
RESOURCE = {"attributes": [kv("service.name", {"stringValue": "cart"}),
                           kv("sea.context", {"stringValue": "orders"})]}  # fmt: skip


def test_every_value_kind_decodes_the_same() -> None:
    spans = [
        {"traceId": T1, "spanId": S1, "name": "a", "kind": "SPAN_KIND_CLIENT",
         "startTimeUnixNano": "1", "endTimeUnixNano": "3", "status": {"code": 2},
         "attributes": RICH_ATTRIBUTES},
        {"name": "b", "attributes": [kv("sea.context", {"stringValue": "billing"})]},
    ]  # fmt: skip
    doc = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"spans": spans}]},
                             {"scopeSpans": [{"spans": spans[1:]}]}]}  # fmt: skip
    from_json, from_proto = both(doc)
    assert_same(from_json, from_proto)
    assert [from_proto.text("sea.context", i) for i in range(3)] == ["orders", "billing", "billing"]
    assert from_proto.attributes_of(0)["m"] == '{"k":1,"e":null}'


def test_logs_and_metrics_decode_the_same() -> None:
    records = [
        {"timeUnixNano": "5", "severityNumber": 17, "body": {"stringValue": "hi"},
         "eventName": "order.placed", "traceId": T1, "spanId": S1},
        {"observedTimeUnixNano": "7", "body": {"kvlistValue": {"values": [kv("a", {})]}},
         "attributes": [kv("event.name", {"stringValue": "e2"})]},
        {"body": {"arrayValue": {"values": [{"boolValue": False}]}}},
    ]  # fmt: skip
    assert_same(*both({"resourceLogs": [{"resource": RESOURCE,
                                         "scopeLogs": [{"logRecords": records}]}]}))  # fmt: skip
    ex = [{"traceId": T1, "spanId": S1, "asDouble": 1.0}]
    route = kv("route", {"stringValue": "/a"})
    metrics = [
        {"name": "g", "gauge": {"dataPoints": [{"timeUnixNano": "10", "asInt": "3"},
                                               {"asDouble": 0.5, "exemplars": ex}]}},
        {"name": "s", "sum": {"dataPoints": [{"timeUnixNano": "12"}]}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "4", "sum": 10.0, "exemplars": ex,
                                                    "attributes": [route]},
                                                   {"count": "0"}]}},
        {"name": "e", "exponentialHistogram": {"dataPoints": [{"count": "2"}]}},
        {"name": "q", "summary": {"dataPoints": [{"count": "2", "sum": 3.0}, {"count": "2"}]}},
        {"name": "nothing"},
    ]  # fmt: skip
    doc = {"resourceMetrics": [{"resource": RESOURCE, "scopeMetrics": [{"metrics": metrics}]}]}
    from_json, from_proto = both(doc)
    assert_same(from_json, from_proto)
    assert from_proto.value[3] == 2.5 and from_proto.value[6] == 1.5 and from_proto.value[7] == 0.0


def test_export_requests_are_the_same_message() -> None:
    doc = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"spans": [{"name": "a"}]}]}]}
    request = ExportTraceServiceRequest(resource_spans=to_message(doc).resource_spans)
    assert_same(decode_message(request, KEYS), decode_document(doc, KEYS))


# --- files ----------------------------------------------------------------------------------


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


TRACES = {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"spans": [
    {"traceId": T1, "spanId": S1, "name": "a", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}
]}]}]}  # fmt: skip
LOGS = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "5"}, {}]}]}]}
METRICS = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
    {"name": "m", "gauge": {"dataPoints": [{"asDouble": 1.0}]}}]}]}]}  # fmt: skip


def test_file_exporter_framing_with_sniffed_signals(tmp_path: Path) -> None:
    parts = [to_proto(TRACES), to_proto(LOGS), to_proto(METRICS)]
    path = tmp_path / "otel.pb"
    path.write_bytes(b"".join(_frame(p) for p in parts))
    messages = list(iter_messages(path))
    assert [(m.index, m.signal) for m in messages] == [(1, Signal.SPAN), (2, Signal.LOG),
                                                       (3, Signal.METRIC)]  # fmt: skip
    assert messages[1].position == f"message 2 (byte {4 + len(parts[0]) + 4})"
    batches = [b for _, b in decode_proto_files([path], KEYS)]
    assert [len(b) for b in batches] == [1, 2, 1]
    assert_same(batches[0], decode_document(TRACES, KEYS))


def test_a_raw_single_message_file(tmp_path: Path) -> None:
    path = tmp_path / "one.pb"
    path.write_bytes(to_proto(TRACES))
    ((message, batch),) = list(decode_proto_files([path], ()))
    assert (message.index, message.offset, message.signal, len(batch)) == (1, 0, Signal.SPAN, 1)


def test_a_truncated_frame_ends_the_file_after_what_came_before(tmp_path: Path) -> None:
    first, second = to_proto(TRACES), to_proto(LOGS)
    path = tmp_path / "t.pb"
    path.write_bytes(_frame(first) + _frame(second)[:-3])
    errors: list[OtlpDecodeError] = []
    assert [len(b) for _, b in decode_proto_files([path], (), on_error=errors.append)] == [1]
    at = 4 + len(first)
    assert [str(e) for e in errors] == [
        f"{path}: message 2 (byte {at}): truncated: the length prefix says {len(second)} bytes, "
        f"{len(second) - 3} remain"
    ]
    with pytest.raises(OtlpDecodeError, match="truncated"):
        list(decode_proto_files([path], ()))


def test_broken_messages_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "t.pb"
    zstd = b"\x28\xb5\x2f\xfd" + b"\x00" * 8
    path.write_bytes(_frame(b"\x0a\x05abc") + _frame(zstd) + _frame(to_proto(METRICS)))
    errors: list[OtlpDecodeError] = []
    got = list(decode_proto_files([path], (), on_error=errors.append, signal=Signal.METRIC))
    assert [m.index for m, _ in got] == [3]
    assert [str(e) for e in errors] == [
        f"{path}: message 1 (byte 4): not a valid MetricsData message "
        "(DecodeError: Wire format was corrupt)",
        f"{path}: message 2 (byte 13): zstd-compressed message (fileexporter compression: zstd); "
        "not supported",
    ]


def test_an_unknown_signal_must_be_given(tmp_path: Path) -> None:
    path = tmp_path / "t.pb"
    path.write_bytes(_frame(b""))
    with pytest.raises(OtlpDecodeError, match=r"message 1 \(byte 4\): cannot tell whether"):
        list(iter_messages(path))
    assert [m.signal for m in iter_messages(path, Signal.LOG)] == [Signal.LOG]


# --- what the protobuf parser accepts but the decoder does not ---------------------------

SPAN_AT = "<request>: message 1, resourceSpans[0].scopeSpans[0].spans[1]"


def _traces(**bad: Any) -> TracesData:
    data = TracesData()
    spans = data.resource_spans.add().scope_spans.add().spans
    spans.add(name="ok")
    spans.add(name="bad", **bad)
    return data


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"trace_id": b"12345"}, f"{SPAN_AT}.traceId: traceId has 5 bytes, expected 16"),
        ({"parent_span_id": b"1" * 9},
         f"{SPAN_AT}.parentSpanId: parentSpanId has 9 bytes, expected 8"),
        ({"kind": 9}, f"{SPAN_AT}.kind: kind 9 is not a SpanKind (0-5)"),
        ({"start_time_unix_nano": 2**63},
         f"{SPAN_AT}.startTimeUnixNano: startTimeUnixNano {2**63} is not a timestamp "
         "(int64 nanoseconds)"),
    ],
)  # fmt: skip
def test_invalid_fields(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(OtlpDecodeError) as info:
        decode_request(_traces(**bad).SerializeToString(), Signal.SPAN, ())
    assert str(info.value) == message


def test_invalid_log_and_metric_fields() -> None:
    logs = LogsData()
    logs.resource_logs.add().scope_logs.add().log_records.add(severity_number=30)
    with pytest.raises(
        OtlpDecodeError, match=r"logRecords\[0\]\.severityNumber: severityNumber 30"
    ):
        decode_message(logs, ())
    metrics = MetricsData()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add(name="m")
    metric.sum.data_points.add().exemplars.add(span_id=b"123")
    with pytest.raises(OtlpDecodeError) as info:
        decode_message(metrics, ())
    assert info.value.position == (
        "message 1, resourceMetrics[0].scopeMetrics[0].metrics[0]"
        ".sum.dataPoints[0].exemplars[0].spanId"
    )
    assert info.value.reason == "spanId has 3 bytes, expected 8"


_VALID = to_proto(
    {"resourceSpans": [{"resource": RESOURCE, "scopeSpans": [{"spans": [
        {"traceId": T1, "spanId": S1, "name": "a", "attributes": RICH_ATTRIBUTES}]}]}]}
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(_VALID)), st.binary(max_size=6), st.sampled_from(list(Signal)))
def test_corrupt_bytes_only_raise_decode_errors(cut: int, junk: bytes, signal: Signal) -> None:
    for data in (_VALID[:cut] + junk, junk + _VALID[cut:], _VALID[:cut] + junk + _VALID[cut:]):
        try:
            decode_request(data, signal, KEYS)
        except OtlpDecodeError as exc:
            assert not exc.reason.startswith("cannot decode"), exc
        assert sniff_signal(data) in {None, *Signal}


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=64))
def test_corrupt_files_only_raise_decode_errors(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("p") / "t.pb"
    path.write_bytes(data)
    errors: list[OtlpDecodeError] = []
    for _, batch in decode_proto_files([path], KEYS, on_error=errors.append):
        assert len(batch) >= 0
