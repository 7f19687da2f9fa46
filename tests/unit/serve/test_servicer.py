"""The servicer and pipeline without a network: versions, errors, projection, hot reload."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from sidecar.decode.semconv import SERVICE_NAME
from sidecar.engine import Engine
from sidecar.evidence.annotations import DRIFT_KIND_NAMES
from sidecar.protocol import correlation_pb2 as pb
from sidecar.serve import CorrelationServicer, Pipeline, projection_for, projection_keys
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import index_from_disk
from sidecar.testing import (
    RecordingMetrics,
    RecordingSink,
    otlp_json_to_proto,
    project_otlp,
    response_attributes,
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "online-boutique" / "specs"
SPANS = {
    "resourceSpans": [
        {
            "resource": {
                "attributes": [{"key": "service.name", "value": {"stringValue": "checkoutservice"}}]
            },
            "scopeSpans": [
                {
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "hipstershop.CheckoutService/PlaceOrder",
                            "kind": 2,
                            "startTimeUnixNano": "1000",
                            "endTimeUnixNano": "5000",
                            "attributes": [
                                {
                                    "key": "rpc.service",
                                    "value": {"stringValue": "hipstershop.CheckoutService"},
                                },
                                {"key": "rpc.method", "value": {"stringValue": "PlaceOrder"}},
                            ],
                        },
                        {"name": "something else entirely", "kind": 1},
                    ]
                }
            ],
        }
    ]
}


class Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code, self.details = code, details


class FakeContext:
    """The two things the servicer asks of a grpc.aio context."""

    def __init__(self, remaining: float | None = None) -> None:
        self.remaining = remaining

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise Aborted(code, details)

    def time_remaining(self) -> float | None:
        return self.remaining


@pytest.fixture(scope="module")
def index() -> RuntimeIndex:
    return index_from_disk(EXAMPLE)


@pytest.fixture
def engine_thread() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


def servicer(
    index: RuntimeIndex,
    engine_thread: ThreadPoolExecutor,
    **kw: Any,
) -> tuple[CorrelationServicer, RecordingMetrics, RecordingSink]:
    metrics, sink = RecordingMetrics(), RecordingSink()
    pipeline = Pipeline(Engine(index), sink=sink, **kw)
    s = CorrelationServicer(pipeline, engine_thread, max_request_bytes=1234, metrics=metrics)
    return s, metrics, sink


def call(coro: Any) -> Any:
    return asyncio.run(coro)


def request(**fields: Any) -> pb.CorrelateRequest:
    r = project_otlp(otlp_json_to_proto(json.loads(json.dumps(SPANS))))
    for k, v in fields.items():
        setattr(r, k, v)
    return r


def test_hello_says_versions_projection_and_limits(index: RuntimeIndex, engine_thread: Any) -> None:
    s, _, _ = servicer(index, engine_thread)
    hello = call(s.Hello(pb.HelloRequest(protocol_version=1, client="t"), FakeContext()))
    assert hello.protocol_version == 1 and hello.spec_version == index.spec_hash
    assert list(hello.drift_kind_names) == list(DRIFT_KIND_NAMES)
    assert hello.max_request_bytes == 1234
    assert hello.projection == projection_for(index, True) and hello.projection.all_attributes


def test_hello_and_correlate_refuse_other_versions(index: RuntimeIndex, engine_thread: Any) -> None:
    s, metrics, _ = servicer(index, engine_thread)
    with pytest.raises(Aborted) as info:
        call(s.Hello(pb.HelloRequest(protocol_version=2), FakeContext()))
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert "version 2" in info.value.details and "version 1" in info.value.details
    with pytest.raises(Aborted) as info:
        call(s.Correlate(request(protocol_version=0), FakeContext()))
    assert info.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert metrics.rejected_requests == [("FAILED_PRECONDITION", "protocol_version")] * 2


def test_correlate_annotates_and_hands_the_batch_to_the_sink(
    index: RuntimeIndex, engine_thread: Any
) -> None:
    s, metrics, sink = servicer(index, engine_thread)
    current = s.pipeline.projection.version
    response = call(s.Correlate(request(projection_version=current), FakeContext(5.0)))
    rows = response_attributes(response)
    assert len(rows) == 2 and rows[0]["behavior.spec_node_id"]
    assert response.spec_version == index.spec_hash
    assert not response.HasField("projection")  # the client already has the current one
    assert [(signal, n) for signal, n, _ in metrics.handled_requests] == [("span", 2)]
    assert len(sink.offered) == 1 and len(sink.offered[0][0]) == 2
    stale = call(s.Correlate(request(projection_version=current + 1), FakeContext()))
    assert stale.projection.version == current


def test_malformed_requests_are_invalid_argument_and_counted(
    index: RuntimeIndex, engine_thread: Any
) -> None:
    s, metrics, sink = servicer(index, engine_thread)
    with pytest.raises(Aborted) as info:
        call(s.Correlate(request(rows=7), FakeContext()))
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details.startswith("malformed request: trace_id: ")
    assert metrics.rejected_requests == [("INVALID_ARGUMENT", "trace_id")]
    assert sink.offered == [] and metrics.handled_requests == []


def test_a_request_whose_deadline_passed_in_the_queue_is_skipped(
    index: RuntimeIndex, engine_thread: Any
) -> None:
    s, _, sink = servicer(index, engine_thread)
    with pytest.raises(Aborted) as info:
        call(s.Correlate(request(), FakeContext(remaining=-1.0)))
    assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED and sink.offered == []


def test_an_engine_failure_is_internal_without_details(
    index: RuntimeIndex, engine_thread: Any, caplog: pytest.LogCaptureFixture
) -> None:
    s, _, _ = servicer(index, engine_thread)

    def broken(batch: Any) -> Any:
        raise RuntimeError("secret detail")

    s.pipeline.engine.process = broken  # type: ignore[method-assign]
    with pytest.raises(Aborted) as info:
        call(s.Correlate(request(), FakeContext()))
    assert info.value.code is grpc.StatusCode.INTERNAL and "secret" not in info.value.details
    assert "secret detail" in caplog.text


def test_a_new_index_changes_spec_version_and_projection(
    index: RuntimeIndex, engine_thread: Any
) -> None:
    s, _, _ = servicer(index, engine_thread, all_attributes=False)
    before = s.pipeline.projection
    assert not before.all_attributes
    changed = index.model_copy(
        update={"spec_hash": "f" * 64, "attribute_keys": (*index.attribute_keys, "app.new")}
    )
    engine_thread.submit(s.pipeline.set_index, changed).result()
    response = call(s.Correlate(request(projection_version=before.version), FakeContext()))
    assert response.spec_version == "f" * 64
    assert response.projection.version != before.version
    assert "app.new" in response.projection.attribute_keys


def test_projection_keys_cover_bindings_service_and_sea(index: RuntimeIndex) -> None:
    keys = projection_keys(index)
    assert {
        SERVICE_NAME,
        "event.name",
        "http.request.method",
        "http.method",
        "sea.context",
        "sea.spec_node",
        "rpc.service",
        *index.attribute_keys,
    } <= set(keys)
    assert list(keys) == sorted(set(keys))
    a, b = projection_for(index, True), projection_for(index, False)
    assert a.version != b.version and a.version == projection_for(index, True).version != 0
