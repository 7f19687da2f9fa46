"""The real sidecar (``python -m sidecar serve`` in a subprocess) over gRPC on loopback.

Requests are built from the Online Boutique recordings (Nezha, MIT) with the test projector
(what the processor sends) and called with the generated client. The annotations must be
what ``replay`` makes of the same items: same engine, other decoder, other transport.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sidecar.adapters.redis_index import RedisIndexCache
from sidecar.evidence.annotations import Annotations
from sidecar.protocol import correlation_pb2 as pb
from sidecar.protocol import correlation_pb2_grpc as pb_grpc
from sidecar.replay import replay
from sidecar.report import DriftReport
from sidecar.serve.app import build_engine
from sidecar.serve.health import SERVICE
from sidecar.settings import Settings
from sidecar.spec_index.startup import index_from_disk
from sidecar.testing import (
    otlp_json_to_proto,
    project_otlp,
    response_attributes,
    slice_document,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "online-boutique" / "specs"
DATA = next(
    (
        p
        for p in (
            ROOT.parent / "shared" / "data" / "online-boutique",
            Path("/work/shared/data/online-boutique"),
        )
        if p.is_dir()
    ),
    ROOT.parent / "shared" / "data" / "online-boutique",
)
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="Online Boutique recordings absent")
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sidecar:
    """One ``python -m sidecar serve`` process and a channel to it."""

    def __init__(self, tmp: Path, *args: str) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.log = tmp / f"sidecar-{uuid.uuid4().hex[:6]}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("BEHAVIOR_")}
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar", "serve", "--listen", self.address, *args],
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.BehaviorCorrelationStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the sidecar exited with {self.proc.returncode}:\n{self.text()}")
            try:
                reply = self.health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        pytest.fail(f"the sidecar did not serve within {START_TIMEOUT_S}s:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> int:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the sidecar did not stop within {timeout_s}s:\n{self.text()}")

    def hello(self) -> pb.HelloResponse:
        return self.stub.Hello(pb.HelloRequest(protocol_version=1, client="test"), timeout=10)


def started(tmp: Path, *args: str) -> Sidecar:
    sidecar = Sidecar(tmp, *args)
    try:
        sidecar.wait_serving()
    except BaseException:
        sidecar.stop(signal.SIGKILL)
        raise
    return sidecar


@pytest.fixture(scope="module")
def sidecar(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sidecar]:
    s = started(tmp_path_factory.mktemp("sidecar"), "--specs", str(EXAMPLE))
    yield s
    assert s.stop() == 0, s.text()


def sliced(name: str, resources: int = 6, items: int = 300) -> dict[str, Any]:
    """The first resources of a recording with at most ``items`` items per scope."""
    return slice_document(json.loads((DATA / name).read_bytes()), resources, items)


RECORDINGS = (
    "fault-currency-cpu/traces.json",
    "fault-currency-cpu/logs.json",
    "fault-currency-cpu/metrics.json",
)


# --- the protocol -------------------------------------------------------------------------------


def test_health_and_hello(sidecar: Sidecar) -> None:
    for service in ("", SERVICE):
        reply = sidecar.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    hello = sidecar.hello()
    index = index_from_disk(EXAMPLE)
    assert hello.protocol_version == 1 and hello.spec_version == index.spec_hash
    assert hello.projection.all_attributes and hello.projection.version != 0
    assert "service.name" in hello.projection.attribute_keys
    assert "pii_exposure" in hello.drift_kind_names
    assert hello.max_request_bytes == 16 << 20


def test_wrong_versions_are_failed_precondition(sidecar: Sidecar) -> None:
    with pytest.raises(grpc.RpcError) as info:
        sidecar.stub.Hello(pb.HelloRequest(protocol_version=2), timeout=5)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "version 2" in info.value.details() and "version 1" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        sidecar.stub.Correlate(pb.CorrelateRequest(protocol_version=7), timeout=5)
    assert info.value.code() is grpc.StatusCode.FAILED_PRECONDITION


def _small_request() -> pb.CorrelateRequest:
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "cartservice"}}]
                },
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "name": "hipstershop.CartService/GetCart",
                                "kind": 2,
                                "traceId": "0102030405060708090a0b0c0d0e0f10",
                                "spanId": "0102030405060708",
                            }
                        ]
                    }
                ],
            }
        ]
    }
    return project_otlp(otlp_json_to_proto(doc))


@pytest.mark.parametrize(
    ("field", "mutate"),
    [
        ("trace_id", lambda r: setattr(r, "rows", 2)),
        ("name", lambda r: setattr(r, "name", (99).to_bytes(4, "little"))),
        ("strings", lambda r: r.strings.__setitem__(0, "x")),
        (
            "resource_first_row",
            lambda r: setattr(r, "resource_first_row", (1).to_bytes(4, "little")),
        ),
        ("attributes.keys", lambda r: setattr(r.attributes, "counts", (3).to_bytes(4, "little"))),
        (
            "attributes.value_types",
            lambda r: (
                setattr(r.attributes, "counts", (1).to_bytes(4, "little")),
                setattr(r.attributes, "keys", (1).to_bytes(4, "little")),
                setattr(r.attributes, "values", (1).to_bytes(4, "little")),
                setattr(r.attributes, "value_types", b"\x63"),
            ),
        ),
        ("signal", lambda r: setattr(r, "signal", 0)),
    ],
)
def test_malformed_requests_are_invalid_argument(sidecar: Sidecar, field: str, mutate: Any) -> None:
    request = _small_request()
    assert sidecar.stub.Correlate(request, timeout=10).rows == 1
    mutate(request)
    with pytest.raises(grpc.RpcError) as info:
        sidecar.stub.Correlate(request, timeout=10)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith(f"malformed request: {field}: ")


def test_a_request_over_the_limit_is_refused(sidecar: Sidecar) -> None:
    request = _small_request()
    request.strings.append("x" * (17 << 20))
    with pytest.raises(grpc.RpcError) as info:
        sidecar.stub.Correlate(request, timeout=10)
    assert info.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_stale_projection_version_gets_the_current_projection(sidecar: Sidecar) -> None:
    current = sidecar.hello().projection
    request = _small_request()
    request.projection_version = current.version
    assert not sidecar.stub.Correlate(request, timeout=10).HasField("projection")
    request.projection_version = 0
    assert sidecar.stub.Correlate(request, timeout=10).projection == current


# --- same annotations as replay -------------------------------------------------------------------


@needs_data
def test_spans_logs_and_metrics_are_annotated_as_replay_does(tmp_path: Path) -> None:
    docs = [sliced(name) for name in RECORDINGS]
    inputs = []
    for i, doc in enumerate(docs):
        inputs.append(tmp_path / f"input-{i}.json")
        inputs[-1].write_text(json.dumps(doc))
    expected: list[Annotations] = []
    engine = build_engine(Settings(), index_from_disk(EXAMPLE), None)
    replay(
        engine,
        inputs,
        io.StringIO(),
        DriftReport(),
        observe=lambda _batch, result: expected.append(result.annotations),
    )
    assert len(expected) == 3
    # A fresh server, so its engine has seen exactly what the replay's had.
    server = started(tmp_path, "--specs", str(EXAMPLE))
    try:
        version = server.hello().projection.version
        linked = []
        for doc, want in zip(docs, expected, strict=True):
            request = project_otlp(otlp_json_to_proto(doc), projection_version=version)
            response = server.stub.Correlate(request, timeout=60)
            got = response_attributes(response)
            assert len(got) == len(want) == request.rows > 20
            assert got == [want.attributes(i) for i in range(len(want))]
            linked.append(sum(1 for row in got if row["behavior.spec_node_id"]))
        assert linked[0] > 20, linked  # spans do link to the spec
    finally:
        assert server.stop() == 0, server.text()


# --- lifecycle ------------------------------------------------------------------------------------


@needs_data
def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path) -> None:
    server = started(tmp_path, "--specs", str(EXAMPLE), "--grace-period-s", "30")
    doc = sliced("baseline/traces.json", resources=20, items=100_000)
    request = project_otlp(otlp_json_to_proto(doc))
    with ThreadPoolExecutor(1) as pool:
        future: Future[pb.CorrelateResponse] = pool.submit(
            server.stub.Correlate, request, timeout=60
        )
        time.sleep(0.3)  # sent, and being correlated (~20k spans)
        server.proc.send_signal(signal.SIGTERM)
        response = future.result()
    assert response.rows == request.rows
    assert server.stop() == 0
    log = server.text()
    assert "shutting down" in log and "stopped" in log


def test_sigint_stops_an_idle_server(tmp_path: Path) -> None:
    server = started(tmp_path, "--specs", str(EXAMPLE))
    assert server.stop(signal.SIGINT) == 0, server.text()


def test_two_workers_share_the_port(tmp_path: Path) -> None:
    server = started(tmp_path, "--specs", str(EXAMPLE), "--workers", "2")
    try:
        # Each worker logs that it serves, then answers whatever connections the kernel gives it.
        deadline = time.monotonic() + START_TIMEOUT_S
        while server.text().count("serving spec version") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server.text().count("serving spec version") == 2, server.text()
        for i in range(40):  # new connections, spread by the kernel over the two sockets
            # A local subchannel pool, else channels to one target share one connection.
            options = [("grpc.use_local_subchannel_pool", 1)]
            with grpc.insecure_channel(server.address, options=options) as channel:
                stub = pb_grpc.BehaviorCorrelationStub(channel)
                stub.Hello(pb.HelloRequest(protocol_version=1, client=f"probe-{i}"), timeout=10)
                assert stub.Correlate(_small_request(), timeout=10).rows == 1
        log = server.text()
        answered = {
            w
            for w in ("sidecar-worker-0", "sidecar-worker-1")
            if any(w in line and "hello from probe-" in line for line in log.splitlines())
        }
        assert answered == {"sidecar-worker-0", "sidecar-worker-1"}, log
    finally:
        assert server.stop() == 0, server.text()
    assert server.text().count("stopped") == 2


def test_invalid_specs_stop_the_start_with_path_and_line(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    shutil.copytree(EXAMPLE, root)
    manifest = next((root / "manifests").glob("*.yaml"))
    manifest.write_text(manifest.read_text() + "\nbroken: [\n")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "serve",
            "--specs",
            str(root),
            "--listen",
            f"127.0.0.1:{free_port()}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert f"manifests/{manifest.name}:" in run.stderr


def test_hot_reload_from_redis(tmp_path: Path, redis_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:spec"
    cache = RedisIndexCache.from_url(redis_url, prefix)
    index = index_from_disk(EXAMPLE)
    cache.publish(index)
    server = started(tmp_path, "--redis-url", redis_url, "--redis-prefix", prefix)
    try:
        first = server.hello()
        assert first.spec_version == index.spec_hash
        changed = index.model_copy(
            update={"spec_hash": "e" * 64, "attribute_keys": (*index.attribute_keys, "app.x")}
        )
        cache.publish(changed)
        deadline = time.monotonic() + 20
        while server.hello().spec_version != changed.spec_hash and time.monotonic() < deadline:
            time.sleep(0.1)
        hello = server.hello()
        assert hello.spec_version == changed.spec_hash
        assert hello.projection.version != first.projection.version
        request = _small_request()
        request.projection_version = first.projection.version
        response = server.stub.Correlate(request, timeout=10)
        assert response.spec_version == changed.spec_hash
        assert "app.x" in response.projection.attribute_keys
    finally:
        assert server.stop() == 0, server.text()
        for key in cache.client.scan_iter(f"{prefix}:*"):
            cache.client.delete(key)
        cache.close()


def test_report_is_written_at_shutdown(tmp_path: Path) -> None:
    """``--report``: every row answered is counted, with the rate findings, once stopped."""
    report = tmp_path / "report.json"
    s = started(tmp_path, "--specs", str(EXAMPLE), "--report", str(report))
    try:
        rows = sum(s.stub.Correlate(_small_request(), timeout=30).rows for _ in range(3))
    finally:
        assert s.stop() == 0, s.text()
    data = json.loads(report.read_text())
    assert rows == 3 and data["items"] == 3 and data["by_signal"] == {"span": 3}
    assert [sv["service"] for sv in data["services"]] == ["cartservice"]
    assert "rate_findings" in data and "drift report written to" in s.text()


def test_report_with_several_workers_is_a_usage_error(tmp_path: Path) -> None:
    s = Sidecar(tmp_path, "--specs", str(EXAMPLE), "--workers", "2", "--report", "r.json")
    assert s.proc.wait(60) == 2, s.text()
    assert "--report needs --workers 1" in s.text()
