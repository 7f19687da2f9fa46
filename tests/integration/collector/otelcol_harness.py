"""Real processes for collector tests and benchmarks: bin/otelcol-behavior and the sidecar.

Shared by tests/integration/test_collector_e2e.py and tests/bench/bench_collector.py (both put
this folder on sys.path). Everything listens on free loopback ports; every process started
here is stopped by :meth:`Proc.stop` (the callers use fixtures or ``try/finally``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped, unused-ignore]  # grpcio ships no type information
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2_grpc import (
    MetricsServiceStub,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

REPO_ROOT = Path(__file__).resolve().parents[3]
BINARY = REPO_ROOT / "bin" / "otelcol-behavior"
BUILD_SCRIPT = REPO_ROOT / "scripts" / "collector" / "build.sh"
CONFIG_DIR = REPO_ROOT / "collector-config"
EXAMPLE_SPECS = REPO_ROOT / "examples" / "online-boutique" / "specs"
LOADGEN_DIR = REPO_ROOT / "tools" / "loadgen"

#: The contract's annotation attributes (MISSION.md, "Contract") and their OTLP value kinds.
CONTRACT_ATTRIBUTES = {
    "behavior.spec_node_id": "stringValue",
    "behavior.context": "stringValue",
    "behavior.match_type": "stringValue",
    "behavior.confidence": "doubleValue",
    "behavior.correlation_status": "stringValue",
    "behavior.drift_score": "doubleValue",
    "behavior.drift_level": "stringValue",
    "behavior.drift_class": "stringValue",
    "behavior.drift_kinds": "arrayValue",
    "behavior.rule_ids": "arrayValue",
    "behavior.evidence_id": "stringValue",
    "behavior.spec_version": "stringValue",
}
CONTRACT_ENUMS = {
    "behavior.match_type": {"deterministic", "heuristic", "none"},
    "behavior.correlation_status": {"ok", "partial", "failed"},
    "behavior.drift_level": {"none", "low", "medium", "high"},
    "behavior.drift_class": {"none", "benign", "semantic"},
}


class HarnessError(RuntimeError):
    """A process could not be built, started or reached; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_collector(timeout_s: float = 1500) -> Path:
    """Run scripts/collector/build.sh (a no-op when up to date); the binary's path."""
    try:
        done = subprocess.run(
            ["bash", str(BUILD_SCRIPT)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"{BUILD_SCRIPT} did not finish in {timeout_s:.0f}s") from exc
    if done.returncode != 0 or not BINARY.is_file():
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-40:])
        raise HarnessError(
            f"cannot build {BINARY.relative_to(REPO_ROOT)}: {BUILD_SCRIPT.name} exited "
            f"{done.returncode}\n{tail}"
        )
    return BINARY


def build_loadgen(out: Path) -> Path:
    """Compile tools/loadgen into ``out`` (go's build cache makes a repeat fast)."""
    env = {**os.environ, "GOPROXY": os.environ.get("GOPROXY", "https://proxy.golang.org")}
    done = subprocess.run(
        ["go", "build", "-o", str(out), "."],
        cwd=LOADGEN_DIR,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise HarnessError(f"cannot build tools/loadgen:\n{done.stdout}{done.stderr}")
    return out


@dataclass
class Proc:
    """A child process with its output in a log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    ports: tuple[int, ...] = ()
    _peak_rss_kib: int = field(default=0, init=False)

    @property
    def pid(self) -> int:
        """The process id."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the process's output."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def tree_pids(self) -> list[int]:
        """The process and its live descendants (the sidecar may fork workers)."""
        children: dict[int, list[int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(_stat_fields(stat.read_text())[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(stat.parent.name))
        tree, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def cpu_seconds(self) -> float:
        """User + system CPU time so far of the process tree (from /proc)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.tree_pids():
            try:
                fields = _stat_fields(Path(f"/proc/{pid}/stat").read_text())
            except OSError:
                continue
            # utime, stime, cutime, cstime: fields 14-17 of /proc/PID/stat (11-14 after comm).
            total += sum(int(f) for f in fields[11:15])
        return total / ticks

    def peak_rss_mib(self) -> float:
        """Peak resident set size (VmHWM) so far, summed over the process tree."""
        kib = 0
        for pid in self.tree_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        kib += int(line.split()[1])
            except OSError:
                continue
        self._peak_rss_kib = max(self._peak_rss_kib, kib)
        return self._peak_rss_kib / 1024

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            self.popen.kill()
            self.popen.wait(timeout=10)

    def stop(self, timeout_s: float = 10) -> None:
        """SIGTERM, then SIGKILL after ``timeout_s``."""
        if not self.alive():
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


def _stat_fields(text: str) -> list[str]:
    """Fields of a /proc/PID/stat line after the command name (which may contain spaces)."""
    return text[text.rindex(")") + 2 :].split()


def start(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    ports: Sequence[int] = (),
    ready_timeout_s: float = 60,
) -> Proc:
    """Start ``argv`` and wait until every port in ``ports`` accepts connections."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
    proc = Proc(name, popen, log_path, tuple(ports))
    try:
        for port in ports:
            wait_for_port(proc, port, ready_timeout_s)
    except BaseException:
        proc.stop()
        raise
    return proc


def wait_for_port(proc: Proc, port: int, timeout_s: float) -> None:
    """Wait until 127.0.0.1:port accepts; fail at once if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise HarnessError(
                f"{proc.name} exited with {proc.popen.returncode} before listening on "
                f"{port}; its output:\n{proc.log_tail()}"
            )
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise HarnessError(
        f"{proc.name} did not listen on {port} within {timeout_s:.0f}s; its output:\n"
        f"{proc.log_tail()}"
    )


def sidecar_argv(listen_port: int, extra: Sequence[str] = ()) -> list[str]:
    """The real sidecar serving the Online Boutique example spec."""
    return [
        sys.executable,
        "-m",
        "sidecar",
        "serve",
        "--specs",
        str(EXAMPLE_SPECS),
        "--listen",
        f"127.0.0.1:{listen_port}",
        *extra,
    ]


def start_sidecar(
    port: int, log_path: Path, extra: Sequence[str] = (), ready_timeout_s: float = 120
) -> Proc:
    """Start ``python -m sidecar serve`` on 127.0.0.1:port and wait until it listens."""
    return start(
        "sidecar",
        sidecar_argv(port, extra),
        log_path,
        ports=[port],
        ready_timeout_s=ready_timeout_s,
    )


def start_collector(
    config: Path,
    log_path: Path,
    env: Mapping[str, str],
    ports: Sequence[int],
    sets: Sequence[str] = (),
    binary: Path = BINARY,
) -> Proc:
    """Start the collector with ``config`` (+ ``--set`` overrides), wait for ``ports``."""
    argv = [str(binary), "--config", str(config), *(f"--set={s}" for s in sets)]
    return start("otelcol-behavior", argv, log_path, env=env, ports=ports)


def validate_config(config: Path, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """``otelcol-behavior validate --config``: exit code and output."""
    done = subprocess.run(
        [str(BINARY), "validate", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


# --- sending OTLP ---------------------------------------------------------------------------


class ExportRefused(Exception):
    """The collector answered an OTLP Export with an error status."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


class OtlpClient:
    """A plain OTLP/gRPC client (the opentelemetry-proto service stubs) for one collector."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self._timeout = timeout_s
        self._traces = TraceServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._logs = LogsServiceStub(self._channel)  # type: ignore[no-untyped-call]
        self._metrics = MetricsServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def _call(self, method: Any, request: Any) -> None:
        try:
            method(request, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise ExportRefused(exc.code().name, str(exc.details())) from exc

    def export_traces(self, request: ExportTraceServiceRequest) -> None:
        """Export spans; raises ExportRefused on an error status."""
        self._call(self._traces.Export, request)

    def export_logs(self, request: ExportLogsServiceRequest) -> None:
        """Export log records; raises ExportRefused on an error status."""
        self._call(self._logs.Export, request)

    def export_metrics(self, request: ExportMetricsServiceRequest) -> None:
        """Export metric data points; raises ExportRefused on an error status."""
        self._call(self._metrics.Export, request)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()


# --- reading what the collector wrote -------------------------------------------------------


def read_documents(path: Path) -> list[dict[str, Any]]:
    """The file exporter's OTLP JSON documents, one per line (a torn last line is skipped)."""
    if not path.exists():
        return []
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            docs.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # being written right now
    return docs


@dataclass(frozen=True)
class Item:
    """One span, log record or metric data point as written, with its decoded attributes."""

    signal: str  # "span" | "log" | "datapoint"
    name: str  # span name, metric name, or the log's event name / body
    trace_id: str
    attributes: dict[str, Any]
    raw_attributes: list[dict[str, Any]]
    service: str


def iter_items(docs: Sequence[dict[str, Any]]) -> Iterator[Item]:
    """Every item in the documents, in order."""
    for doc in docs:
        yield from _spans(doc)
        yield from _logs(doc)
        yield from _datapoints(doc)


def _service(resource: dict[str, Any]) -> str:
    attrs = decode_attributes(resource.get("attributes") or [])
    return str(attrs.get("service.name", ""))


def _spans(doc: dict[str, Any]) -> Iterator[Item]:
    for rs in doc.get("resourceSpans") or []:
        service = _service(rs.get("resource") or {})
        for ss in rs.get("scopeSpans") or []:
            for sp in ss.get("spans") or []:
                raw = sp.get("attributes") or []
                yield Item(
                    "span",
                    sp.get("name", ""),
                    sp.get("traceId", ""),
                    decode_attributes(raw),
                    raw,
                    service,
                )


def _logs(doc: dict[str, Any]) -> Iterator[Item]:
    for rl in doc.get("resourceLogs") or []:
        service = _service(rl.get("resource") or {})
        for sl in rl.get("scopeLogs") or []:
            for rec in sl.get("logRecords") or []:
                raw = rec.get("attributes") or []
                name = rec.get("eventName") or (rec.get("body") or {}).get("stringValue", "")
                yield Item(
                    "log", name, rec.get("traceId", ""), decode_attributes(raw), raw, service
                )


_POINT_KINDS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


def _datapoints(doc: dict[str, Any]) -> Iterator[Item]:
    for rm in doc.get("resourceMetrics") or []:
        service = _service(rm.get("resource") or {})
        for sm in rm.get("scopeMetrics") or []:
            for metric in sm.get("metrics") or []:
                for kind in _POINT_KINDS:
                    for dp in (metric.get(kind) or {}).get("dataPoints") or []:
                        raw = dp.get("attributes") or []
                        yield Item(
                            "datapoint",
                            metric.get("name", ""),
                            "",
                            decode_attributes(raw),
                            raw,
                            service,
                        )


def decode_value(value: dict[str, Any]) -> Any:
    """An OTLP JSON AnyValue as a Python value (int64s arrive as strings in OTLP JSON)."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [decode_value(v) for v in (value["arrayValue"] or {}).get("values") or []]
    if "kvlistValue" in value:
        return decode_attributes((value["kvlistValue"] or {}).get("values") or [])
    return None


def decode_attributes(attrs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """OTLP JSON key/value list to a dict."""
    return {kv["key"]: decode_value(kv.get("value") or {}) for kv in attrs}


def contract_problems(item: Item) -> list[str]:
    """What is wrong with an item's annotations against the contract (empty: nothing)."""
    kinds = {kv["key"]: next(iter(kv.get("value") or {"": None}), "") for kv in item.raw_attributes}
    problems = []
    for key, kind in CONTRACT_ATTRIBUTES.items():
        if key not in kinds:
            problems.append(f"missing {key}")
        elif kinds[key] != kind and not (kind == "arrayValue" and kinds[key] == ""):
            problems.append(f"{key} is {kinds[key] or 'empty'}, expected {kind}")
    attrs = item.attributes
    for key, allowed in CONTRACT_ENUMS.items():
        if key in attrs and attrs[key] not in allowed:
            problems.append(f"{key}={attrs[key]!r} not in {sorted(allowed)}")
    for key in ("behavior.confidence", "behavior.drift_score"):
        value = attrs.get(key)
        if isinstance(value, float) and not 0.0 <= value <= 1.0:
            problems.append(f"{key}={value} outside [0, 1]")
    for key in ("behavior.drift_kinds", "behavior.rule_ids"):
        value = attrs.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) for v in value)
        ):
            problems.append(f"{key}={value!r} is not a list of strings")
    return problems


def is_annotated(item: Item) -> bool:
    """Does the item carry any behavior.* attribute?"""
    return any(k.startswith("behavior.") for k in item.attributes)


# --- the collector's own metrics ------------------------------------------------------------


def scrape(port: int) -> str:
    """The collector's Prometheus self-metrics text."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode("utf-8"))


_SAMPLE = re.compile(r"^([A-Za-z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric_sum(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of counter ``name`` whose labels include ``labels``.

    Exporters differ on the ``_total`` suffix of counters; both spellings count.
    """
    total = 0.0
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None or m.group(1) not in (name, f"{name}_total"):
            continue
        found = dict(_LABEL.findall(m.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total
