"""Splitting OTLP messages into export requests under a size limit (no server needed)."""

from __future__ import annotations

import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from sidecar.adapters.otlp_exporter import split
from sidecar.decode.otlp_message import to_message
from sidecar.decode.problems import OtlpDecodeError


def traces(resources: int, spans: int) -> TracesData:
    data = TracesData()
    for r in range(resources):
        rs = data.resource_spans.add()
        rs.resource.attributes.add(key="service.name").value.string_value = f"svc-{r}"
        ss = rs.scope_spans.add()
        ss.scope.name = "scope"
        for i in range(spans):
            span = ss.spans.add(name=f"op-{i % 7}", span_id=(r * 100_000 + i + 1).to_bytes(8))
            span.trace_id = (i + 1).to_bytes(16)
    return data


def span_keys(parts: list[TracesData]) -> list[tuple[str, bytes]]:
    return [
        (rs.resource.attributes[0].value.string_value, span.span_id)
        for part in parts
        for rs in part.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


@pytest.mark.parametrize(
    ("resources", "spans", "limit"), [(1, 10, 1 << 20), (5, 40, 2000), (3, 500, 4000), (2, 3, 60)]
)
def test_parts_stay_under_the_limit_and_keep_every_item_in_order(
    resources: int, spans: int, limit: int
) -> None:
    data = traces(resources, spans)
    parts = list(split(data, limit))
    assert span_keys(parts) == span_keys([data])
    whole_fits = data.ByteSize() <= limit
    assert len(parts) == 1 if whole_fits else len(parts) > 1
    # A part is over the limit only when it is a single item too large on its own.
    for part in parts:
        if part.ByteSize() > limit:
            assert (
                len(part.resource_spans) == 1
                and len(part.resource_spans[0].scope_spans[0].spans) == 1
            )


@pytest.mark.parametrize(
    ("resources", "spans", "max_items"), [(1, 1200, 512), (7, 100, 250), (3, 5, 5)]
)
def test_parts_hold_at_most_max_items_and_keep_every_item_in_order(
    resources: int, spans: int, max_items: int
) -> None:
    data = traces(resources, spans)
    parts = list(split(data, 1 << 20, max_items))
    assert span_keys(parts) == span_keys([data])
    sizes = [sum(len(ss.spans) for rs in p.resource_spans for ss in rs.scope_spans) for p in parts]
    assert max(sizes) <= max_items
    # Packed, not one resource or one item per request: only the last part may be short of
    # what the next resource would have made too many.
    assert len(parts) <= -(-resources * spans // max_items) + resources


def test_an_oversized_resource_keeps_its_resource_and_scope_in_every_part() -> None:
    data = traces(1, 300)
    parts = list(split(data, 1500))
    assert len(parts) > 3
    for part in parts:
        (rs,) = part.resource_spans
        assert rs.resource.attributes[0].value.string_value == "svc-0"
        assert rs.scope_spans[0].scope.name == "scope"


def test_otlp_json_becomes_its_message_and_bad_input_names_file_and_line() -> None:
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
         "body": {"stringValue": "hi"}, "timeUnixNano": "5"}]}]}]}  # fmt: skip
    message = to_message(doc)
    assert isinstance(message, LogsData)
    record = message.resource_logs[0].scope_logs[0].log_records[0]
    assert record.trace_id == bytes(range(1, 17)) and record.time_unix_nano == 5
    with pytest.raises(OtlpDecodeError, match=r"^in\.json: line 4: .*timeUnixNano"):
        to_message({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "x"}]}]}]},
                   "in.json", 4)  # fmt: skip
    with pytest.raises(OtlpDecodeError, match="expected exactly one of resourceSpans"):
        to_message({"nothing": []})
