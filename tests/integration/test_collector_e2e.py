"""End to end: the real bin/otelcol-behavior with the real sidecar, over loopback.

OTLP/gRPC requests from a Python client go through collector-config/local.yaml (ports, paths
and knobs set through its ${env:...} variables) and come out of the file exporter; the tests
read that file. The binary is built by scripts/collector/build.sh (a no-op when up to date);
a build failure fails these tests, it never skips them.

Covered: every shipped config validates; spans, log records and metric data points carry the
contract annotations; a batch larger than max_message_bytes is chunked and fully annotated;
fail-open keeps exporting when the sidecar dies, counts it in the collector's self-metrics and
annotates again once the sidecar is back; fail-closed returns the error to the client; the
two-tier scale-out config keeps every trace whole on one tier-2 collector.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

sys.path.insert(0, str(Path(__file__).resolve().parent / "collector"))

import boutique_otlp as otlp
import otelcol_harness as h

LOCAL = h.CONFIG_DIR / "local.yaml"
TIER1 = h.CONFIG_DIR / "scale-out" / "tier1.yaml"
TIER2 = h.CONFIG_DIR / "scale-out" / "tier2.yaml"
ALL_CONFIGS = sorted(h.CONFIG_DIR.rglob("*.yaml"))
# Self-metric names as the Prometheus reader exposes them (otelcol_ prefix).
M_ANNOTATED = "otelcol_processor_behaviorcorrelation_items_annotated"
M_UNANNOTATED = "otelcol_processor_behaviorcorrelation_items_unannotated"
M_REQUESTS = "otelcol_processor_behaviorcorrelation_requests_sent"
M_REQUEST_BYTES = "otelcol_processor_behaviorcorrelation_request_bytes"
MAX_MESSAGE_BYTES = 64 * 1024
# groupbytrace answers the client before the processor runs and releases one trace per batch;
# tests that need the client's batch (or error) at the processor take it out of the pipeline.
NO_GROUPBYTRACE = "service.pipelines.traces.processors=[memory_limiter,behaviorcorrelation,batch]"


@pytest.fixture(scope="session")
def collector_binary() -> Path:
    """bin/otelcol-behavior, built (or found up to date) once per session."""
    try:
        return h.build_collector()
    except h.HarnessError as exc:
        pytest.fail(str(exc), pytrace=False)


@dataclass
class Collector:
    """A running collector on local.yaml and how to talk to it."""

    proc: h.Proc
    grpc_port: int
    metrics_port: int
    output: Path
    client: h.OtlpClient

    def send_traces(self, req: ExportTraceServiceRequest) -> None:
        """Export spans; raises h.ExportRefused when the collector refuses them."""
        self.client.export_traces(req)

    def metrics(self) -> str:
        """The collector's self-metrics (Prometheus text)."""
        return h.scrape(self.metrics_port)

    def items(self) -> list[h.Item]:
        """Everything the file exporter has written so far."""
        return list(h.iter_items(h.read_documents(self.output)))


StartCollector = Callable[..., Collector]
StartSidecar = Callable[..., h.Proc]


@pytest.fixture
def start_sidecar(tmp_path: Path) -> Iterator[StartSidecar]:
    """Start the real sidecar (``python -m sidecar serve``) on a given or free port."""
    procs: list[h.Proc] = []

    def start(port: int | None = None, name: str = "sidecar", extra: Sequence[str] = ()) -> h.Proc:
        port = port or h.free_port()
        try:
            proc = h.start_sidecar(port, tmp_path / f"{name}-{len(procs)}.log", extra)
        except h.HarnessError as exc:
            pytest.fail(f"the sidecar did not start: {exc}", pytrace=False)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.stop()


@pytest.fixture
def start_collector(collector_binary: Path, tmp_path: Path) -> Iterator[StartCollector]:
    """Start bin/otelcol-behavior on local.yaml with free ports and a file output in tmp."""
    running: list[Collector] = []

    def start(sidecar_port: int, sets: Sequence[str] = (), **env: str) -> Collector:
        n = len(running)
        grpc_port, http_port, metrics_port = h.free_port(), h.free_port(), h.free_port()
        output = tmp_path / f"collector-{n}.jsonl"
        full_env = {
            "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{grpc_port}",
            "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{http_port}",
            "COLLECTOR_METRICS_PORT": str(metrics_port),
            "BEHAVIOR_SIDECAR_ENDPOINT": f"127.0.0.1:{sidecar_port}",
            "BEHAVIOR_FILE_OUTPUT": str(output),
            "GROUPBYTRACE_WAIT": "300ms",
            "BATCH_TIMEOUT": "50ms",
            "FILE_FLUSH_INTERVAL": "100ms",
            "DEBUG_VERBOSITY": "basic",
            **env,
        }
        try:
            proc = h.start_collector(
                LOCAL,
                tmp_path / f"collector-{n}.log",
                full_env,
                ports=[grpc_port, metrics_port],
                sets=sets,
                binary=collector_binary,
            )
        except h.HarnessError as exc:
            pytest.fail(f"the collector did not start: {exc}", pytrace=False)
        collector = Collector(proc, grpc_port, metrics_port, output, h.OtlpClient(grpc_port))
        running.append(collector)
        return collector

    yield start
    for collector in running:
        collector.client.close()
        collector.proc.stop()


def wait_for(
    what: str, check: Callable[[], bool], timeout_s: float = 20, explain: Callable[[], str] = str
) -> None:
    """Poll ``check`` until it holds; fail with ``what`` and ``explain()`` otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}. {explain()}", pytrace=False)


_run_counter = iter(range(1, 1 << 30))


def new_traces(count: int, template: Sequence[otlp.SpanShape]) -> ExportTraceServiceRequest:
    """``count`` traces of ``template`` with trace ids not used before in this session."""
    base = next(_run_counter) << 20
    return otlp.traces_request(
        [(otlp.trace_id(base + i), template) for i in range(count)], time.time_ns()
    )


def ids_of(req: ExportTraceServiceRequest) -> set[str]:
    """Hex trace ids in a request (as the file exporter writes them)."""
    return {tid.hex() for tid, _ in otlp.iter_span_ids(req)}


def spans_of(collector: Collector, trace_ids: set[str]) -> list[h.Item]:
    """Spans of the given traces written so far."""
    return [i for i in collector.items() if i.signal == "span" and i.trace_id in trace_ids]


def describe(items: Sequence[h.Item]) -> str:
    """A short account of items and their problems, for failure messages."""
    lines = [f"{len(items)} items"]
    for item in items[:5]:
        lines.append(f"  {item.signal} {item.name!r}: {h.contract_problems(item) or 'ok'}")
    return "\n".join(lines)


# --- configs ---------------------------------------------------------------------------------


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=lambda p: str(p.relative_to(h.CONFIG_DIR)))
def test_shipped_config_validates(collector_binary: Path, config: Path) -> None:
    """Every collector-config/**/*.yaml passes `otelcol-behavior validate` with its defaults."""
    del collector_binary
    code, output = h.validate_config(config, {"OPENOBSERVE_AUTH": "dGVzdDp0ZXN0"})
    assert code == 0, f"{config.name} does not validate:\n{output}"


def test_validate_rejects_a_bad_processor_config(collector_binary: Path, tmp_path: Path) -> None:
    """The processor's Validate() runs under `validate`: a bad failure_mode is an error."""
    del collector_binary
    code, output = h.validate_config(LOCAL, {"BEHAVIOR_FAILURE_MODE": "sometimes"})
    assert code != 0, "failure_mode=sometimes was accepted"
    assert "failure_mode" in output, output


# --- annotation ------------------------------------------------------------------------------


def test_spans_logs_and_datapoints_carry_the_contract(
    start_sidecar: StartSidecar, start_collector: StartCollector
) -> None:
    """Traces, logs and metrics sent over OTLP/gRPC come out annotated per the contract."""
    sidecar = start_sidecar()
    collector = start_collector(sidecar.ports[0])
    traces = otlp.traces_request(
        [
            (otlp.trace_id(next(_run_counter) << 20), otlp.checkout_trace()),
            (otlp.trace_id((next(_run_counter) << 20) + 1), otlp.view_cart_trace()),
        ],
        time.time_ns(),
    )
    tid, sid = next(otlp.iter_span_ids(traces))
    collector.send_traces(traces)
    collector.client.export_logs(otlp.logs_request(tid, sid, time.time_ns()))
    collector.client.export_metrics(otlp.metrics_request(time.time_ns()))
    n_spans = len(otlp.checkout_trace()) + len(otlp.view_cart_trace())

    def complete() -> bool:
        items = collector.items()
        return (
            sum(i.signal == "span" for i in items) >= n_spans
            and sum(i.signal == "log" for i in items) >= 2
            and sum(i.signal == "datapoint" for i in items) >= 2
        )

    wait_for(
        "all spans, logs and data points in the file exporter's output",
        complete,
        explain=lambda: describe(collector.items()),
    )
    items = collector.items()
    bad = [(i.signal, i.name, p) for i in items if (p := h.contract_problems(i))]
    assert not bad, f"items without the contract annotations: {bad[:10]}"

    by_name = {(i.signal, i.name): i for i in items}
    place_order = by_name[("span", "hipstershop.CheckoutService/PlaceOrder")].attributes
    assert place_order["behavior.match_type"] == "deterministic", place_order
    assert place_order["behavior.spec_node_id"], place_order
    assert place_order["behavior.context"] == "checkout", place_order
    assert place_order["behavior.spec_version"], place_order
    cart = by_name[("span", "GET /cart")].attributes
    assert cart["behavior.context"] == "storefront", cart
    metric = by_name[("datapoint", "app.orders.placed")].attributes
    assert metric["behavior.spec_node_id"], metric
    span_evidence = [i.attributes["behavior.evidence_id"] for i in items if i.signal == "span"]
    assert len(set(span_evidence)) == len(span_evidence), "evidence ids repeat across spans"

    text = collector.metrics()
    assert h.metric_sum(text, M_ANNOTATED) >= len(items), text


def test_batch_over_max_message_bytes_is_chunked_and_fully_annotated(
    start_sidecar: StartSidecar, start_collector: StartCollector
) -> None:
    """A batch several times max_message_bytes goes to the sidecar in several requests.

    groupbytrace is left out so the whole request reaches the processor as one batch.
    """
    sidecar = start_sidecar()
    collector = start_collector(
        sidecar.ports[0],
        sets=[NO_GROUPBYTRACE],
        BEHAVIOR_MAX_MESSAGE_BYTES=str(MAX_MESSAGE_BYTES),
        BEHAVIOR_TIMEOUT="5s",
    )
    req = new_traces(400, otlp.checkout_trace())  # 6800 spans, projection well over 64 KiB
    wanted = ids_of(req)
    n_spans = sum(1 for _ in otlp.iter_span_ids(req))
    collector.send_traces(req)
    wait_for(
        f"{n_spans} spans in the output",
        lambda: len(spans_of(collector, wanted)) >= n_spans,
        timeout_s=60,
        explain=lambda: f"{len(spans_of(collector, wanted))} so far",
    )
    spans = spans_of(collector, wanted)
    assert len(spans) == n_spans
    unannotated = [s for s in spans if h.contract_problems(s)]
    assert not unannotated, describe(unannotated)
    text = collector.metrics()
    requests = h.metric_sum(text, M_REQUESTS)
    assert requests > 1, f"expected the batch split into several requests, saw {requests}"
    mean_bytes = h.metric_sum(text, M_REQUEST_BYTES) / requests
    assert mean_bytes <= MAX_MESSAGE_BYTES, f"requests average {mean_bytes:.0f} bytes"
    assert h.metric_sum(text, M_UNANNOTATED) == 0, text


# --- failure modes ---------------------------------------------------------------------------


def test_fail_open_survives_a_sidecar_crash_and_resumes(
    start_sidecar: StartSidecar, start_collector: StartCollector
) -> None:
    """Sidecar killed: spans flow on unannotated and are counted; restarted: annotated again."""
    sidecar_port = h.free_port()
    sidecar = start_sidecar(sidecar_port)
    collector = start_collector(sidecar_port, BEHAVIOR_TIMEOUT="500ms")

    before = new_traces(5, otlp.checkout_trace())
    collector.send_traces(before)
    wait_for(
        "annotated spans while the sidecar runs",
        lambda: any(h.is_annotated(s) for s in spans_of(collector, ids_of(before))),
        explain=lambda: describe(spans_of(collector, ids_of(before))),
    )

    sidecar.kill()
    during = new_traces(5, otlp.checkout_trace())
    collector.send_traces(during)  # fail-open: accepted although the sidecar is gone
    n_during = sum(1 for _ in otlp.iter_span_ids(during))
    wait_for(
        "spans exported while the sidecar is down",
        lambda: len(spans_of(collector, ids_of(during))) >= n_during,
        explain=collector.proc.log_tail,
    )
    annotated = [s for s in spans_of(collector, ids_of(during)) if h.is_annotated(s)]
    assert not annotated, "spans the sidecar never saw carry annotations"
    wait_for(
        "the unannotated items counted in the self-metrics",
        lambda: h.metric_sum(collector.metrics(), M_UNANNOTATED) >= n_during,
        explain=collector.metrics,
    )
    assert collector.proc.alive()

    start_sidecar(sidecar_port, name="sidecar-restarted")
    resumed: set[str] = set()

    def annotating_again() -> bool:
        req = new_traces(1, otlp.checkout_trace())
        resumed.update(ids_of(req))
        collector.send_traces(req)
        time.sleep(0.5)
        return any(h.is_annotated(s) for s in spans_of(collector, resumed))

    wait_for(
        "annotations after the sidecar came back",
        annotating_again,
        timeout_s=90,
        explain=collector.proc.log_tail,
    )


def test_fail_closed_returns_the_error_to_the_client(start_collector: StartCollector) -> None:
    """failure_mode=closed and no sidecar: the client's Export fails (logs and traces).

    Traces go through a pipeline without groupbytrace here: groupbytrace answers the client
    before the processor runs, so no error could travel back through it.
    """
    nobody = h.free_port()  # nothing listens there
    collector = start_collector(
        nobody,
        sets=[NO_GROUPBYTRACE],
        BEHAVIOR_FAILURE_MODE="closed",
        BEHAVIOR_TIMEOUT="300ms",
    )
    tid = otlp.trace_id(next(_run_counter) << 20)
    with pytest.raises(h.ExportRefused) as logs_error:
        collector.client.export_logs(otlp.logs_request(tid, b"\x01" * 8, time.time_ns()))
    assert logs_error.value.code != "DEADLINE_EXCEEDED", logs_error.value
    with pytest.raises(h.ExportRefused):
        collector.send_traces(new_traces(2, otlp.checkout_trace()))
    time.sleep(0.5)
    assert not [i for i in collector.items() if i.trace_id == tid.hex()], (
        "fail-closed exported a batch the sidecar never checked"
    )


# --- scale-out -------------------------------------------------------------------------------


def publish_index(redis_url: str, prefix: str) -> str:
    """``python -m sidecar spec publish`` the example spec to Redis; the published version."""
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "spec", "publish", str(h.EXAMPLE_SPECS),
         "--redis", redis_url, "--prefix", prefix],
        capture_output=True, text=True, timeout=120, check=False, cwd=h.REPO_ROOT,
    )  # fmt: skip
    match = re.search(r"published spec version (\w+)", done.stdout)
    if done.returncode != 0 or match is None:
        pytest.fail(f"spec publish failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return match.group(1)


@pytest.mark.usefixtures("redis_client")  # removes the prefix's keys afterwards
def test_two_tier_load_balancing_keeps_traces_whole(
    collector_binary: Path,
    tmp_path: Path,
    start_sidecar: StartSidecar,
    redis_url: str,
    redis_prefix: str,
) -> None:
    """tier1.yaml routes by trace id: each trace lands whole on one of two tier-2 collectors.

    Each tier-2 collector has its own sidecar replica; the replicas load the index published
    once to a shared Redis, so both tiers annotate with that spec version.
    """
    published = publish_index(redis_url, redis_prefix)
    shared_index = ["--redis-url", redis_url, "--redis-prefix", redis_prefix]
    tier2_ports = [h.free_port(), h.free_port()]
    outputs = [tmp_path / "tier2-a.jsonl", tmp_path / "tier2-b.jsonl"]
    procs: list[h.Proc] = []
    try:
        for i, (port, out) in enumerate(zip(tier2_ports, outputs, strict=True)):
            sidecar = start_sidecar(name=f"sidecar-{i}", extra=shared_index)
            metrics = h.free_port()
            procs.append(
                h.start_collector(
                    TIER2,
                    tmp_path / f"tier2-{i}.log",
                    {
                        "TIER2_OTLP_ENDPOINT": f"127.0.0.1:{port}",
                        "BEHAVIOR_SIDECAR_ENDPOINT": f"127.0.0.1:{sidecar.ports[0]}",
                        "TIER2_FILE_OUTPUT": str(out),
                        "COLLECTOR_METRICS_PORT": str(metrics),
                        "GROUPBYTRACE_WAIT": "300ms",
                        "BATCH_TIMEOUT": "50ms",
                        "FILE_FLUSH_INTERVAL": "100ms",
                    },
                    ports=[port, metrics],
                    # No OpenObserve here: the file copy is what the test reads.
                    sets=[
                        f"service.pipelines.{s}.exporters=[file]"
                        for s in ("traces", "logs", "metrics")
                    ],
                    binary=collector_binary,
                )
            )
        tier1_grpc, tier1_metrics = h.free_port(), h.free_port()
        procs.append(
            h.start_collector(
                TIER1,
                tmp_path / "tier1.log",
                {
                    "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{tier1_grpc}",
                    "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{h.free_port()}",
                    "COLLECTOR_METRICS_PORT": str(tier1_metrics),
                    "TIER2_ENDPOINT_A": f"127.0.0.1:{tier2_ports[0]}",
                    "TIER2_ENDPOINT_B": f"127.0.0.1:{tier2_ports[1]}",
                },
                ports=[tier1_grpc, tier1_metrics],
                binary=collector_binary,
            )
        )
    except h.HarnessError as exc:
        for proc in procs:
            proc.stop()
        pytest.fail(f"the two-tier setup did not start: {exc}", pytrace=False)

    try:
        # 60 traces, each split over two requests (first half of its spans, then the rest),
        # so only trace-id routing - not request affinity - keeps them together.
        template = otlp.checkout_trace()
        base = next(_run_counter) << 20
        tids = [otlp.trace_id(base + i) for i in range(60)]
        now = time.time_ns()
        halves = [slice(0, 8), slice(8, None)]
        client = h.OtlpClient(tier1_grpc)
        try:
            for half in halves:
                client.export_traces(otlp.traces_request([(t, template) for t in tids], now, half))
        finally:
            client.close()
        wanted = {t.hex() for t in tids}
        n_spans = len(template) * len(tids)

        def per_tier() -> list[list[h.Item]]:
            return [
                [
                    i
                    for i in h.iter_items(h.read_documents(o))
                    if i.signal == "span" and i.trace_id in wanted
                ]
                for o in outputs
            ]

        wait_for(
            f"{n_spans} spans across both tier-2 collectors",
            lambda: sum(map(len, per_tier())) >= n_spans,
            timeout_s=60,
            explain=lambda: (
                f"{[len(t) for t in per_tier()]} so far; tier1 log:\n{procs[-1].log_tail()}"
            ),
        )
        tiers = per_tier()
        assert sum(map(len, tiers)) == n_spans, "spans duplicated or lost between tiers"
        traces_per_tier = [{i.trace_id for i in t} for t in tiers]
        assert all(traces_per_tier), f"one tier-2 got nothing: {[len(t) for t in tiers]}"
        split = traces_per_tier[0] & traces_per_tier[1]
        assert not split, f"{len(split)} traces were split across tier-2 collectors"
        for tier in tiers:
            counts: dict[str, int] = {}
            for item in tier:
                counts[item.trace_id] = counts.get(item.trace_id, 0) + 1
            assert set(counts.values()) == {len(template)}, "a tier-2 got a partial trace"
        annotated = sum(h.is_annotated(i) for t in tiers for i in t)
        assert annotated == n_spans, f"only {annotated}/{n_spans} spans annotated on tier 2"
        versions = {i.attributes["behavior.spec_version"] for t in tiers for i in t}
        assert len(versions) == 1, f"the replicas annotated with different indexes: {versions}"
        (version,) = versions
        assert version.startswith(published) or published.startswith(version), (
            f"annotated with {version}, but {published} was published to Redis"
        )
    finally:
        for proc in procs:
            proc.stop()
