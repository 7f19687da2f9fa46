"""Metric series: every metric the system exports once a minute, with exemplars and drift.

Declared metrics take values in their normal range (sums count the executions of their source
operation); exemplars point at the latest clean execution. ``undeclared_metric`` adds metrics
no spec declares from the middle of the run on; ``metric_range`` pushes gauge points outside
their declared range. A metric document holds five minutes of exports.
"""

from __future__ import annotations

import bisect
import math
from typing import Any

from sidecar.synth.drift_injection import UNDECLARED_METRICS
from sidecar.synth.labels import ItemLabel
from sidecar.synth.otlp_records import MetricRecord, PointRecord, encode_document
from sidecar.synth.run_state import RunState
from sidecar.synth.system import Metric

METRIC_INTERVAL_NS = 60 * 10**9
METRIC_DOC_INTERVALS = 5


def metric_documents(state: RunState) -> tuple[list[dict[str, Any]], list[ItemLabel]]:
    """Every metric exported each minute; one document per five minutes."""
    times = list(range(state.start + METRIC_INTERVAL_NS, state.end + 1, METRIC_INTERVAL_NS))
    series = [_declared(state, m, times) for m in state.model.metrics]
    series += _undeclared_metrics(state, times)
    _inject_metric_range(state, series)
    docs: list[dict[str, Any]] = []
    labels: list[ItemLabel] = []
    for lo in range(0, len(times), METRIC_DOC_INTERVALS):
        batch = set(times[lo : lo + METRIC_DOC_INTERVALS])
        records = [
            MetricRecord(m.res, m.scope, m.name, m.unit, m.kind, m.start, points)
            for m in series
            if (points := [p for p in m.points if p.time in batch])
        ]
        if records:
            doc, doc_labels = encode_document(records, state.resources, len(docs))
            docs.append(doc)
            labels += doc_labels
    return docs, labels


def _declared(state: RunState, m: Metric, times: list[int]) -> MetricRecord:
    """A declared metric's points; exemplars are the latest clean execution it counts."""
    svc = state.model.service(m.service)
    executions = sorted(state.executions.get(m.source, []), key=lambda s: s.start)
    starts = [s.start for s in executions]
    points = []
    for t in times:
        hi = bisect.bisect_left(starts, t)
        recent = [
            s for s in executions[max(0, hi - 20) : hi]
            if s.start >= t - METRIC_INTERVAL_NS and not s.label.drift
        ]  # fmt: skip
        ex = recent[-1] if recent else None
        value: int | float
        if m.kind == "sum":
            value = hi
        elif m.name == "app.order.value" and ex is not None:
            value = float(ex.attrs["app.order.total"])
        elif m.unit in ("USD", "1"):
            value = round(state.rng.uniform(*m.normal), 2)
        else:
            value = state.rng.randint(int(m.normal[0]), int(m.normal[1]))
        label = ItemLabel(
            "metric", ex.trace_id if ex else "", ex.span_id if ex else "", "point", m.name,
            m.node_id, "deterministic", "binding",
        )  # fmt: skip
        sample = 1 if m.kind == "sum" else value
        exemplar = (ex.trace_id, ex.span_id, ex.end, sample) if ex else None
        points.append(PointRecord(t, value, label, exemplar))
    res = state.resource(svc.name, svc.pods[0], svc.version, svc.language)
    return MetricRecord(res, svc.app_scope, m.name, m.unit, m.kind, state.start, points)


def _undeclared_metrics(state: RunState, times: list[int]) -> list[MetricRecord]:
    """Metrics a deploy halfway through the run starts exporting (no spec declares them)."""
    if not state.plan.count("undeclared_metric", state.traces):
        return []
    per = math.ceil(state.plan.minimum / len(UNDECLARED_METRICS))
    first = max(0, min(len(times) // 2, len(times) - per))
    out = []
    for service, name, kind, unit in UNDECLARED_METRICS:
        svc = state.model.service(service)
        total = 0
        points = []
        for t in times[first:]:
            total += state.rng.randint(0, 6)
            value = total if kind == "sum" else round(state.rng.uniform(0.55, 0.9), 3)
            label = ItemLabel(
                "metric", "", "", "point", name, None, "none", None,
                drift=["undeclared_metric"], detail=f"undeclared_metric: {name}",
            )  # fmt: skip
            points.append(PointRecord(t, value, label))
        res = state.resource(svc.name, svc.pods[0], svc.version, svc.language)
        out.append(MetricRecord(res, svc.app_scope, name, unit, kind, state.start, points))
    return out


def _inject_metric_range(state: RunState, series: list[MetricRecord]) -> None:
    """Gauge points pushed outside their declared range."""
    declared = {m.name: m for m in state.model.metrics}
    pool = [(m, p) for m in series if m.kind == "gauge" and m.name in declared for p in m.points]
    for m, p in state.rng.sample(
        pool, min(len(pool), state.plan.count("metric_range", state.traces))
    ):
        spec = declared[m.name]
        if spec.min is not None and spec.min > 0:
            value = spec.min - 1
        else:
            value = (spec.max or 0) * state.rng.uniform(1.3, 2.0)
        p.value = round(value, 2) if isinstance(p.value, float) else int(value)
        if p.exemplar is not None:
            p.exemplar = (p.exemplar[0], p.exemplar[1], p.exemplar[2], p.value)
        p.label.drift.append("metric_range")
        p.label.detail = f"metric_range: {m.name}={p.value}"
