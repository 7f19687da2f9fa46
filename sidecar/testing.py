"""In-memory fakes of the sidecar's ports, for unit tests (integration tests use real servers)."""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from sidecar.decode.otlp_message import to_message
from sidecar.decode.otlp_proto import signal_of
from sidecar.decode.proto_signals import FIELDS, plain
from sidecar.decode.values import body_text, plain_text, point_mean
from sidecar.engine import EngineResult
from sidecar.errors import IndexNotFound
from sidecar.evidence.annotations import (
    CONFIDENCE,
    CONTEXT,
    CORRELATION_STATUS,
    DRIFT_CLASS,
    DRIFT_KIND_NAMES,
    DRIFT_KINDS,
    DRIFT_LEVEL,
    DRIFT_SCORE,
    EVIDENCE_ID,
    MATCH_TYPE,
    RULE_IDS,
    SPEC_NODE_ID,
    SPEC_VERSION,
    CorrelationStatus,
    DriftClass,
    DriftLevel,
    MatchType,
)
from sidecar.evidence.batch import EvidenceBatch, Signal
from sidecar.protocol import correlation_pb2 as pb
from sidecar.spec_index.codec import decode_index, encode_index
from sidecar.spec_index.index import RuntimeIndex


class InMemoryIndexCache:
    """The index cache without Redis: payloads go through the real codec."""

    def __init__(self) -> None:
        self.payloads: dict[str, bytes] = {}
        self.current: str | None = None

    def publish(self, index: RuntimeIndex) -> bool:
        """Store an index and make it current."""
        self.payloads[index.spec_hash] = encode_index(index)
        moved = self.current != index.spec_hash
        self.current = index.spec_hash
        return moved

    def current_hash(self) -> str | None:
        """The hash replicas should serve."""
        return self.current

    def load(self, spec_hash: str) -> RuntimeIndex:
        """The index stored under a hash."""
        if spec_hash not in self.payloads:
            raise IndexNotFound(spec_hash)
        return decode_index(self.payloads[spec_hash], expected_hash=spec_hash)

    def load_current(self) -> RuntimeIndex:
        """The index the current pointer names."""
        if self.current is None:
            raise IndexNotFound("nothing published")
        return self.load(self.current)


class RecordingMetrics:
    """The server's metrics port, remembering every report."""

    def __init__(self) -> None:
        self.handled_requests: list[tuple[str, int, float]] = []
        self.rejected_requests: list[tuple[str, str]] = []

    def handled(self, signal: str, rows: int, seconds: float) -> None:
        """Remember an answered request."""
        self.handled_requests.append((signal, rows, seconds))

    def rejected(self, code: str, field: str) -> None:
        """Remember a refused request."""
        self.rejected_requests.append((code, field))


class RecordingSink:
    """The evidence sink port, keeping every batch it is offered (tests only: unbounded)."""

    def __init__(self) -> None:
        self.offered: list[tuple[EvidenceBatch, EngineResult]] = []

    def offer(self, batch: EvidenceBatch, result: EngineResult) -> None:
        """Keep the batch."""
        self.offered.append((batch, result))


# --- the processor's projection, built in Python (tests only; the processor is Go) ------------

_VALUE_TYPES = {
    "string_value": pb.VALUE_TYPE_STRING, "bool_value": pb.VALUE_TYPE_BOOL,
    "int_value": pb.VALUE_TYPE_INT, "double_value": pb.VALUE_TYPE_DOUBLE,
    "bytes_value": pb.VALUE_TYPE_BYTES, "array_value": pb.VALUE_TYPE_ARRAY,
    "kvlist_value": pb.VALUE_TYPE_KVLIST,
}  # fmt: skip
_PB_SIGNALS = {Signal.SPAN: pb.SIGNAL_SPANS, Signal.LOG: pb.SIGNAL_LOGS,
               Signal.METRIC: pb.SIGNAL_METRICS}  # fmt: skip


class _Projector:
    """Builds one CorrelateRequest row by row, following the comments of correlation.proto."""

    def __init__(self, keys: Collection[str] | None) -> None:
        self.keys = keys
        self.strings: dict[str, int] = {"": 0}
        self.cols: dict[str, bytearray] = defaultdict(bytearray)
        self.rows = 0
        self.resources: list[int] = []

    def code(self, text: str) -> int:
        return self.strings.setdefault(text, len(self.strings))

    def put(self, column: str, fmt: str, value: float) -> None:
        self.cols[column] += struct.pack(fmt, value)

    def ids(self, column: str, raw: bytes, size: int) -> None:
        self.cols[column] += raw if raw else bytes(size)

    def attributes(self, prefix: str, kvs: Iterable[Any]) -> None:
        count = 0
        for kv in kvs:
            which = kv.value.WhichOneof("value")
            if self.keys is not None and kv.key not in self.keys:
                continue
            # The empty value is sent as VALUE_TYPE_EMPTY with code 0 (its text is "").
            self.put(prefix + "keys", "<I", self.code(kv.key))
            self.put(prefix + "values", "<I", self.code(plain_text(plain(kv.value))))
            self.put(prefix + "value_types", "B", pb.VALUE_TYPE_EMPTY if which is None
                     else _VALUE_TYPES[which])  # fmt: skip
            count += 1
        self.put(prefix + "counts", "<I", count)

    def row(self, resource: Any, new_resource: bool) -> None:
        if new_resource:
            self.put("resource_first_row", "<I", self.rows)
            self.attributes("r.", resource.attributes)
        self.rows += 1

    def request(self, signal: Signal, projection_version: int) -> pb.CorrelateRequest:
        c = self.cols
        fields = {k: bytes(v) for k, v in c.items() if "." not in k}

        def attrs(prefix: str) -> pb.Attributes:
            return pb.Attributes(counts=bytes(c[prefix + "counts"]), keys=bytes(c[prefix + "keys"]),
                                 values=bytes(c[prefix + "values"]),
                                 value_types=bytes(c[prefix + "value_types"]))  # fmt: skip

        return pb.CorrelateRequest(
            protocol_version=pb.PROTOCOL_VERSION_1, signal=_PB_SIGNALS[signal], rows=self.rows,
            projection_version=projection_version, strings=list(self.strings),
            resource_attributes=attrs("r."), attributes=attrs("a."), **fields,
        )  # fmt: skip


def otlp_json_to_proto(doc: dict[str, Any]) -> TracesData | LogsData | MetricsData:
    """An OTLP JSON document as its protobuf message (see ``decode.otlp_message``)."""
    return to_message(doc)


def slice_document(doc: dict[str, Any], resources: int, items: int) -> dict[str, Any]:
    """A copy of an OTLP JSON document with its first ``resources`` resources and at most
    ``items`` items per scope (small real inputs for tests)."""
    (key,) = doc
    out: dict[str, Any] = json.loads(json.dumps(doc))
    out[key] = out[key][:resources]
    for rs in out[key]:
        for scope_key in [k for k in rs if k.startswith("scope")]:
            for scope in rs[scope_key]:
                for item_key in [k for k in scope if k != "scope"]:
                    scope[item_key] = scope[item_key][:items]
    return out


def project_otlp(
    message: Any, *, keys: Collection[str] | None = None, projection_version: int = 0
) -> pb.CorrelateRequest:
    """What the processor sends for an OTLP message (TracesData, LogsData, MetricsData or an
    export request): every attribute, or only ``keys`` (a projection without all_attributes)."""
    signal = signal_of(message)
    p = _Projector(keys)
    top, scopes, items = FIELDS[signal]
    for rs in getattr(message, top):
        first = True
        for ss in getattr(rs, scopes):
            for item in getattr(ss, items):
                if signal is Signal.METRIC:
                    first = _project_metric(p, rs.resource, item, first)
                    continue
                p.row(rs.resource, first)
                first = False
                (_project_span if signal is Signal.SPAN else _project_log)(p, item)
    return p.request(signal, projection_version)


def _project_span(p: _Projector, span: Any) -> None:
    p.ids("trace_id", span.trace_id, 16)
    p.ids("span_id", span.span_id, 8)
    p.ids("parent_span_id", span.parent_span_id, 8)
    p.put("start_time_unix_nano", "<q", span.start_time_unix_nano)
    p.put("end_time_unix_nano", "<q", span.end_time_unix_nano)
    p.put("kind", "B", span.kind)
    p.put("status_code", "B", span.status.code)
    p.put("name", "<I", p.code(span.name))
    p.attributes("a.", span.attributes)


def _project_log(p: _Projector, rec: Any) -> None:
    p.ids("trace_id", rec.trace_id, 16)
    p.ids("span_id", rec.span_id, 8)
    p.put("start_time_unix_nano", "<q", rec.time_unix_nano or rec.observed_time_unix_nano)
    p.put("severity_number", "B", rec.severity_number)
    p.put("event_name", "<I", p.code(rec.event_name))
    p.put("body", "<I", p.code(body_text(plain(rec.body))))
    p.attributes("a.", rec.attributes)


def _project_metric(p: _Projector, resource: Any, metric: Any, first: bool) -> bool:
    field = metric.WhichOneof("data")
    if field is None:
        return first
    for point in getattr(metric, field).data_points:
        p.row(resource, first)
        first = False
        p.put("start_time_unix_nano", "<q", point.time_unix_nano)
        p.put("name", "<I", p.code(metric.name))
        if field in ("gauge", "sum"):
            which = point.WhichOneof("value")
            value = float("nan") if which is None else float(getattr(point, which))
        elif field == "summary":
            value = point_mean(point.sum, point.count)
        else:
            value = point_mean(point.sum if point.HasField("sum") else None, point.count)
        p.put("value", "<d", value)
        exemplar = point.exemplars[0] if len(getattr(point, "exemplars", ())) else None
        p.ids("exemplar_trace_id", b"" if exemplar is None else exemplar.trace_id, 16)
        p.ids("exemplar_span_id", b"" if exemplar is None else exemplar.span_id, 8)
        p.attributes("a.", point.attributes)
    return first


def response_attributes(response: pb.CorrelateResponse) -> list[dict[str, Any]]:
    """The contract attributes of every row of a response, as ``Annotations.attributes`` gives
    them (what the processor writes onto the telemetry)."""
    r = response
    n = r.rows

    def col(data: bytes, dtype: str) -> Any:
        values = np.frombuffer(data, dtype)
        assert len(values) == n, f"a {dtype} column of {len(values)} entries for {n} rows"
        return values

    node, ctx = col(r.spec_node_id, "<u4"), col(r.context, "<u4")
    match, status = col(r.match_type, "u1"), col(r.correlation_status, "u1")
    conf, score = col(r.confidence, "<f4"), col(r.drift_score, "<f4")
    level, cls = col(r.drift_level, "u1"), col(r.drift_class, "u1")
    kinds, counts = col(r.drift_kinds, "<u4"), col(r.rule_counts, "<u4")
    evidence = col(r.evidence_id, "<u8")
    rules = np.frombuffer(r.rule_ids, "<u4")
    starts = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
    assert starts[-1] == len(rules), "rule_counts do not sum to the rule ids"
    s = r.strings
    return [
        {
            SPEC_NODE_ID: s[node[i]],
            CONTEXT: s[ctx[i]],
            MATCH_TYPE: MatchType(int(match[i])).name.lower(),
            CONFIDENCE: round(float(conf[i]), 4),
            CORRELATION_STATUS: CorrelationStatus(int(status[i])).name.lower(),
            DRIFT_SCORE: round(float(score[i]), 4),
            DRIFT_LEVEL: DriftLevel(int(level[i])).name.lower(),
            DRIFT_CLASS: DriftClass(int(cls[i])).name.lower(),
            DRIFT_KINDS: [k for b, k in enumerate(DRIFT_KIND_NAMES) if int(kinds[i]) >> b & 1],
            RULE_IDS: [s[c] for c in rules[starts[i] : starts[i + 1]]],
            EVIDENCE_ID: f"{int(evidence[i]):016x}",
            SPEC_VERSION: r.spec_version,
        }
        for i in range(n)
    ]
