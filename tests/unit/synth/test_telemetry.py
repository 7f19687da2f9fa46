"""The labelled telemetry generator: deterministic, valid, and its labels are really true."""

from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar.spec.expr import compile_assertion
from sidecar.spec_index.compile import compile_spec_tree
from sidecar.spec_index.index import RuntimeIndex
from sidecar.synth.drift_injection import (
    BENIGN_VARIATIONS,
    DRIFT_KINDS,
    ITEM_KINDS,
    RATE_KINDS,
    DriftPlan,
    luhn_card,
)
from sidecar.synth.labels import (
    Generated,
    ItemLabel,
    drift_counts,
    read_labels,
    write_dataset,
)
from sidecar.synth.spec_writer import write_system_spec
from sidecar.synth.system import SystemModel
from sidecar.synth.telemetry import DEFAULT_START_NS, generate, run_duration_ns

TRACES = 2000
HEX32 = re.compile(r"[0-9a-f]{32}")
HEX16 = re.compile(r"[0-9a-f]{16}")
ANY_VALUE_KEYS = {"stringValue", "intValue", "doubleValue", "boolValue", "arrayValue"}


@pytest.fixture(scope="module")
def spec_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spec")


@pytest.fixture(scope="module")
def model(spec_root: Path) -> SystemModel:
    return write_system_spec(spec_root)


@pytest.fixture(scope="module")
def index(spec_root: Path, model: SystemModel) -> RuntimeIndex:
    del model  # the spec is written by the model fixture
    compiled = compile_spec_tree(spec_root)
    assert compiled.ok, compiled.problems
    assert compiled.index is not None
    return compiled.index


@pytest.fixture(scope="module")
def drifted(model: SystemModel) -> Generated:
    return generate(
        model, seed=11, traces=TRACES, start_ns=DEFAULT_START_NS, drift=DriftPlan.default()
    )


@pytest.fixture(scope="module")
def baseline(model: SystemModel) -> Generated:
    return generate(
        model, seed=10, traces=TRACES, start_ns=DEFAULT_START_NS, drift=DriftPlan.none()
    )


def items(docs: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Spans, log records or metric data points in document order."""
    for doc in docs:
        key = next(iter(doc))
        scoped = {
            "resourceSpans": "scopeSpans",
            "resourceLogs": "scopeLogs",
            "resourceMetrics": "scopeMetrics",
        }[key]
        for res in doc[key]:
            for scope in res[scoped]:
                yield from scope.get("spans") or scope.get("logRecords") or []
                for metric in scope.get("metrics", []):
                    data = metric.get("gauge") or metric["sum"]
                    yield from data["dataPoints"]


def plain(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in attributes:
        ((kind, value),) = kv["value"].items()
        out[kv["key"]] = int(value) if kind == "intValue" else value
    return out


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return 1.0 - sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k))


def spans_with_labels(g: Generated) -> list[tuple[dict[str, Any], ItemLabel]]:
    return list(zip(items(g.traces), g.span_labels, strict=True))


def duration_ms(span: dict[str, Any]) -> float:
    return (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6


# -- the spec ---------------------------------------------------------------------------


def test_written_spec_validates_and_matches_the_model(
    model: SystemModel, index: RuntimeIndex
) -> None:
    assert len(index.operations) == len(model.operations) >= 20
    assert len(set(index.services.values())) == len(model.contexts) >= 4
    for op in model.operations.values():
        entry = index.operations[op.flow_id]
        assert entry.services == (op.service,)
        assert set(entry.calls) == set(op.calls)
        assert entry.requires_calls == op.requires_calls
        assert entry.steps == op.steps
        assert entry.deprecated is bool(op.deprecated)
        assert entry.budget is not None and entry.budget.p95_ms == op.budget.p95_ms
    assert sum(op.deprecated != "" for op in model.operations.values()) == 1
    b = index.bindings
    assert b.rpc and b.http and b.messaging and b.log_event and b.metric
    assert {m.name for m in model.metrics} <= set(index.metrics)
    assert index.ignore and index.policies and index.privacy


# -- determinism and files --------------------------------------------------------------


def test_same_seed_gives_identical_bytes(model: SystemModel, tmp_path: Path) -> None:
    for name in ("a", "b"):
        g = generate(
            model, seed=3, traces=300, start_ns=DEFAULT_START_NS, drift=DriftPlan.default()
        )
        write_dataset(tmp_path / name, g)
    for file in ("traces.json", "logs.json", "metrics.json", "labels.jsonl", "windows.json"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes()
    other = generate(
        model, seed=4, traces=300, start_ns=DEFAULT_START_NS, drift=DriftPlan.default()
    )
    write_dataset(tmp_path / "c", other)
    assert (tmp_path / "c" / "traces.json").read_bytes() != (
        tmp_path / "a" / "traces.json"
    ).read_bytes()


def test_dataset_files_round_trip(drifted: Generated, tmp_path: Path) -> None:
    write_dataset(tmp_path, drifted)
    lines = (tmp_path / "traces.json").read_text().splitlines()
    assert [json.loads(line) for line in lines] == drifted.traces
    back = read_labels(tmp_path)
    assert back.items == drifted.labels
    assert back.windows == drifted.windows
    assert [x.signal for x in back.items] == sorted(
        (x.signal for x in back.items), key=["span", "log", "metric"].index
    )


# -- alignment and encoding -------------------------------------------------------------


def test_labels_align_with_items_in_document_order(drifted: Generated) -> None:
    for docs, labels in (
        (drifted.traces, drifted.span_labels),
        (drifted.logs, drifted.log_labels),
    ):
        found = [(x["traceId"], x["spanId"]) for x in items(docs)]
        assert found == [(x.trace_id, x.span_id) for x in labels]
    points = list(items(drifted.metrics))
    assert len(points) == len(drifted.metric_labels)
    for point, label in zip(points, drifted.metric_labels, strict=True):
        exemplar = point.get("exemplars", [{"traceId": "", "spanId": ""}])[0]
        assert (exemplar["traceId"], exemplar["spanId"]) == (label.trace_id, label.span_id)
    for docs, labels in ((drifted.traces, drifted.span_labels), (drifted.logs, drifted.log_labels)):
        per_doc = [sum(1 for _ in items([doc])) for doc in docs]
        assert [x.doc for x in labels] == [i for i, n in enumerate(per_doc) for _ in range(n)]


def test_otlp_json_is_well_formed(drifted: Generated) -> None:
    for doc in drifted.traces:
        assert len(doc["resourceSpans"]) >= 2
        for res in doc["resourceSpans"]:
            assert "service.name" in plain(res["resource"]["attributes"])
    for span, label in spans_with_labels(drifted):
        ok = "broken_telemetry" not in label.drift
        assert HEX32.fullmatch(span["traceId"]) or (not ok and span["traceId"] == "")
        assert HEX16.fullmatch(span["spanId"]) or (not ok and span["spanId"] == "")
        assert not ok or (span["traceId"] != "0" * 32 and span["spanId"] != "0" * 16)
        assert "parentSpanId" not in span or HEX16.fullmatch(span["parentSpanId"])
        assert span["kind"] in (1, 2, 3, 4, 5)
        start, end = span["startTimeUnixNano"], span["endTimeUnixNano"]
        assert start.isdigit() and end.isdigit()
        assert int(end) >= int(start) or not ok
        for kv in span["attributes"]:
            ((kind, value),) = kv["value"].items()
            assert kind in ANY_VALUE_KEYS
            assert kind != "intValue" or isinstance(value, str)
        assert span["status"] == {} or span["status"]["code"] == 2
    for record in items(drifted.logs):
        assert record["severityNumber"] in (9, 13, 17)
        assert isinstance(record["body"]["stringValue"], str)
        assert HEX32.fullmatch(record["traceId"]) and HEX16.fullmatch(record["spanId"])
    for point in items(drifted.metrics):
        assert point["timeUnixNano"].isdigit()
        assert isinstance(point.get("asInt", ""), str) and ("asInt" in point or "asDouble" in point)
        for exemplar in point.get("exemplars", []):
            assert HEX32.fullmatch(exemplar["traceId"]) and HEX16.fullmatch(exemplar["spanId"])


# -- drift: every kind, with a useful count, and really true ----------------------------


def test_default_plan_injects_every_kind_with_a_useful_count(drifted: Generated) -> None:
    counts = drift_counts(drifted.labels)
    assert set(counts) == set(DRIFT_KINDS)
    for kind in ITEM_KINDS:
        assert counts[kind] >= 20, kind
    assert {w.kind for w in drifted.windows} == set(RATE_KINDS)
    for window in drifted.windows:
        assert window.samples >= 100
        assert window.window_end_ns - window.window_start_ns >= 10 * 60 * 10**9
        assert drifted.start_ns <= window.window_start_ns < window.window_end_ns <= drifted.end_ns
    assert drifted.end_ns - drifted.start_ns == run_duration_ns(TRACES)


def test_clean_plan_has_no_drift_and_stays_inside_budgets(
    baseline: Generated, model: SystemModel
) -> None:
    assert not drift_counts(baseline.labels) and not baseline.windows
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for span, label in spans_with_labels(baseline):
        if label.role in ("server", "consumer") and label.spec_node:
            latencies[label.spec_node].append(duration_ms(span))
            errors[label.spec_node] += span["status"].get("code") == 2
    assert set(latencies) == {op for op, o in model.operations.items() if not o.deprecated}
    for op, values in latencies.items():
        budget = model.operations[op].budget
        values.sort()
        assert values[int(0.95 * len(values))] < 0.5 * budget.p95_ms, op
        # Not significantly above the budget: few executions make one error look like a lot.
        assert binomial_tail(errors[op], len(values), budget.error_rate) > 0.05, op


def test_rate_windows_hold_exactly_for_their_target(drifted: Generated, model: SystemModel) -> None:
    for window in drifted.windows:
        inside: list[dict[str, Any]] = []
        outside: list[dict[str, Any]] = []
        for span, label in spans_with_labels(drifted):
            if label.spec_node == window.spec_node and label.role in ("server", "client"):
                start = int(span["startTimeUnixNano"])
                if label.role == "server":
                    in_window = window.window_start_ns <= start < window.window_end_ns
                    (inside if in_window else outside).append(span)
                    assert (window.kind in label.drift) is in_window
            else:
                assert window.kind not in label.drift
        assert len(inside) == window.samples
        budget = model.operations[window.spec_node].budget
        slow = sorted(duration_ms(s) for s in inside)
        usual = sorted(duration_ms(s) for s in outside)
        failed = sum(s["status"].get("code") == 2 for s in inside) / len(inside)
        if window.kind == "latency_budget":
            assert slow[int(0.95 * len(slow))] > 1.5 * budget.p95_ms
        elif window.kind == "baseline_shift":
            assert slow[len(slow) // 2] > 1.8 * usual[len(usual) // 2]
            assert slow[int(0.95 * len(slow))] < budget.p95_ms
        else:
            assert failed > 3 * budget.error_rate


def test_labelled_item_drift_is_really_there(drifted: Generated, model: SystemModel) -> None:
    pairs = spans_with_labels(drifted)
    by_trace: dict[str, list[tuple[dict[str, Any], ItemLabel]]] = defaultdict(list)
    for span, label in pairs:
        by_trace[span["traceId"]].append((span, label))
    policies = {p.node_id: compile_assertion(p.assertion) for p in model.policies}
    seen: set[str] = set()
    for span, label in pairs:
        op = model.operations.get(label.spec_node or "")
        attrs = plain(span["attributes"])
        for kind in label.drift:
            seen.add(kind)
            assert op is not None or kind in ("undeclared_operation", "unknown_service")
            if kind == "missing_attribute":
                assert op is not None and not set(op.required) <= set(attrs)
            elif kind == "forbidden_attribute":
                assert op is not None and set(op.forbidden) & set(attrs)
            elif kind == "policy_violation":
                assert op is not None
                verdicts = [policies[p].evaluate(attrs) for p in op.policies]
                assert False in verdicts
            elif kind in ("unexpected_call", "missing_call", "flow_order"):
                assert op is not None
                children = [
                    lbl.spec_node
                    for s, lbl in by_trace[span["traceId"]]
                    if s.get("parentSpanId") == span["spanId"] and lbl.role == "client"
                ]
                if kind == "unexpected_call":
                    assert set(children) - set(op.calls)
                elif kind == "missing_call":
                    assert set(op.requires_calls) - set(children)
                else:
                    order = [c for c in dict.fromkeys(children) if c in op.steps]
                    assert order != sorted(order, key=op.steps.index)
            elif kind == "broken_telemetry":
                assert (
                    int(span["endTimeUnixNano"]) < int(span["startTimeUnixNano"])
                    or span["traceId"] in ("", "0" * 32)
                    or span["spanId"] in ("", "0" * 16)
                )
    # clean implementing spans of the same operations satisfy what the drift ones break
    for span, label in pairs:
        op = model.operations.get(label.spec_node or "")
        if label.drift or op is None or label.role not in ("server", "consumer"):
            continue
        attrs = plain(span["attributes"])
        assert set(op.required) <= set(attrs) and not set(op.forbidden) & set(attrs)
        assert all(policies[p].evaluate(attrs) is not False for p in op.policies)
    assert {
        "missing_attribute",
        "forbidden_attribute",
        "policy_violation",
        "unexpected_call",
        "missing_call",
        "flow_order",
        "broken_telemetry",
    } <= seen


def test_undeclared_and_unknown_items_name_nothing_in_the_spec(
    drifted: Generated, index: RuntimeIndex
) -> None:
    for label in drifted.labels:
        if {"undeclared_operation", "unknown_service", "undeclared_metric"} & set(label.drift):
            assert label.spec_node is None and label.binding == "none"
        if "undeclared_operation" in label.drift:
            assert all(label.name not in names for names in index.bindings.span.values())
        if "unknown_service" in label.drift and label.signal == "span":
            assert label.name not in index.bindings.rpc
        if "undeclared_metric" in label.drift:
            assert label.name not in index.bindings.metric
        if "undeclared_event" in label.drift:
            assert label.name and label.name not in index.bindings.log_event
        if "deprecated_operation" in label.drift:
            assert index.operations[label.spec_node or ""].deprecated


def test_metric_range_points_are_outside_the_declared_range(
    drifted: Generated, model: SystemModel
) -> None:
    ranges = {m.name: (m.min, m.max) for m in model.metrics}
    for point, label in zip(items(drifted.metrics), drifted.metric_labels, strict=True):
        value = float(point.get("asDouble", point.get("asInt", 0)))
        if label.name not in ranges:
            assert label.drift == ["undeclared_metric"]
            continue
        lo, hi = ranges[label.name]
        outside = (lo is not None and value < lo) or (hi is not None and value > hi)
        assert outside is ("metric_range" in label.drift)


# -- benign variation and heuristic-only items -----------------------------------------


def test_every_benign_variation_is_present_and_drift_free(
    drifted: Generated, baseline: Generated
) -> None:
    for g in (drifted, baseline):
        counts: dict[str, int] = defaultdict(int)
        for label in g.labels:
            for variation in label.benign:
                counts[variation] += 1
                assert not label.drift, label
        assert set(counts) == set(BENIGN_VARIATIONS)
        assert min(counts.values()) >= 20, counts


def test_lost_context_and_retries_look_like_it(baseline: Generated) -> None:
    pairs = spans_with_labels(baseline)
    ids = {(s["traceId"], s["spanId"]) for s, _ in pairs}
    lost = [s for s, lbl in pairs if "lost_context" in lbl.benign and lbl.role == "server"]
    assert any("parentSpanId" not in s for s in lost)  # a new root
    assert any("parentSpanId" in s and (s["traceId"], s["parentSpanId"]) not in ids for s in lost)
    failed = [s for s, lbl in pairs if "retry" in lbl.benign and lbl.role == "client"]
    assert any(s["status"].get("code") == 2 for s in failed)
    assert any(s["status"] == {} for s in failed)


def test_heuristic_only_items_bind_to_nothing(
    drifted: Generated, baseline: Generated, index: RuntimeIndex
) -> None:
    bound_names = {name for names in index.bindings.span.values() for name in names}
    bound_names |= set(index.bindings.rpc) | set(index.bindings.messaging)
    bound_names |= {key for keys in index.bindings.http.values() for key in keys}
    ignored = {r.span_name for r in index.ignore if r.span_name}
    renamed: dict[str, set[str]] = defaultdict(set)
    for g in (baseline, drifted):
        for span, label in spans_with_labels(g):
            if label.via != "similarity":
                continue
            assert label.binding == "heuristic" and label.spec_node in index.operations
            assert label.name not in bound_names and label.name not in ignored
            attrs = plain(span["attributes"])
            assert not {"rpc.service", "rpc.method", "http.route", "sea.spec_node"} & set(attrs)
            renamed[label.spec_node].add(label.name)
    assert len(renamed) >= 5
    assert sum(len(names) for names in renamed.values()) >= 15


def test_binding_classes_are_consistent(drifted: Generated, index: RuntimeIndex) -> None:
    b = index.bindings
    for label in drifted.labels:
        assert label.binding in ("deterministic", "heuristic", "none")
        assert (label.spec_node is None) is (label.binding == "none")
        if label.binding != "deterministic" or label.via != "binding":
            continue
        if label.signal == "metric":
            assert b.metric[label.name] == label.spec_node
        elif label.signal == "log":
            assert b.log_event[label.name] == label.spec_node
        elif label.role == "client":
            assert b.rpc[label.name] == label.spec_node
        elif label.role in ("producer", "consumer"):
            assert label.spec_node in b.messaging.values()
        else:
            by_name = {**b.span.get(label_service(label, index), {}), **b.http["web-gateway"]}
            assert by_name[label.name] == label.spec_node


def label_service(label: ItemLabel, index: RuntimeIndex) -> str:
    """The service whose span bindings name this server span (test helper)."""
    return next((s for s, names in index.bindings.span.items() if label.name in names), "")


def test_luhn_cards_are_valid() -> None:
    digits = [int(c) for c in luhn_card(random.Random(1)).replace(" ", "")]
    total = sum(
        d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
        for i, d in enumerate(reversed(digits))
    )
    assert len(digits) == 16 and total % 10 == 0
