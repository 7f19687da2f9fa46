"""Labelled synthetic telemetry: the bookshop's traffic as OTLP JSON, with exact ground truth.

``generate`` runs ``traces`` user requests against the model of :mod:`sidecar.synth.bookshop`
(arrivals spread uniformly over ``traces / 0.5`` seconds), plus health probes every 30 s per
service and metric exports every 60 s, and returns OTLP JSON documents (protojson: camelCase,
hex ids, int64 as strings, AnyValue wrappers) with one label per item
(:mod:`sidecar.synth.labels`). Everything is drawn from one ``random.Random(seed)``: the same
arguments give byte-identical output. It knows nothing about the engine it evaluates.

A trace document holds one minute of requests (several resources and scopes), a metric
document five minutes of exports. The parts: :mod:`~sidecar.synth.traffic` (requests, normal
and with benign variation), :mod:`~sidecar.synth.offspec_traces` (probes and traces outside
the spec), :mod:`~sidecar.synth.metric_series` (metric points),
:mod:`~sidecar.synth.drift_injection` (what drift goes where), :mod:`~sidecar.synth.run_state`
(the state they share) and :mod:`~sidecar.synth.otlp_records` (encoding).

``python -m sidecar.synth.telemetry OUT_DIR --seed 7 --traces 2000`` writes ``spec/``,
``baseline/`` (no drift, seed 7) and ``drifted/`` (every kind, seed 8, starting where the
baseline ends).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sidecar.synth.drift_injection import (
    METRIC_KINDS,
    TRACE_KINDS,
    DriftPlan,
    Injection,
    trace_variants,
)
from sidecar.synth.labels import (
    Generated,
    ItemLabel,
    WindowTruth,
    benign_counts,
    drift_counts,
    write_dataset,
)
from sidecar.synth.metric_series import metric_documents
from sidecar.synth.offspec_traces import health_probes
from sidecar.synth.otlp_records import encode_document
from sidecar.synth.run_state import RunState, Unit
from sidecar.synth.spec_writer import write_system_spec
from sidecar.synth.system import SystemModel
from sidecar.synth.traffic import Traffic

TRACES_PER_SECOND = 0.5
DOC_NS = 60 * 10**9
DEFAULT_START_NS = 1_750_000_000_000_000_000


def run_duration_ns(traces: int) -> int:
    """How long a run of ``traces`` requests lasts."""
    return max(1, round(traces / TRACES_PER_SECOND * 1e9))


def generate(
    model: SystemModel, *, seed: int, traces: int, start_ns: int, drift: DriftPlan
) -> Generated:
    """Generate ``traces`` labelled requests (plus probes and metrics) from ``start_ns`` on."""
    end_ns = start_ns + run_duration_ns(traces)
    state = RunState(model, drift, seed=seed, traces=traces, start_ns=start_ns, end_ns=end_ns)
    rng = state.rng
    length = state.end - state.start
    starts = sorted(state.start + int(rng.random() * length) for _ in range(traces))
    entries = model.entry_operations()
    roots = rng.choices([op.flow_id for op in entries], [op.weight for op in entries], k=traces)
    injections = _assign(state, roots)
    traffic = Traffic(state)
    units = [traffic.request(roots[i], starts[i], injections.get(i)) for i in range(traces)]
    units += health_probes(state)
    units.sort(key=lambda u: u.start)
    trace_docs, span_labels, logs, log_labels = _trace_documents(state, units)
    metrics, metric_labels = metric_documents(state)
    windows = [
        WindowTruth(k, drift.targets[k], a, b, state.samples[k])
        for k, (a, b) in state.windows.items()
    ]
    return Generated(
        trace_docs, logs, metrics, span_labels, log_labels, metric_labels, windows,
        state.start, state.end,
    )  # fmt: skip


def _assign(state: RunState, roots: list[str]) -> dict[int, Injection]:
    """One injection per chosen trace, never in traces that may reach a rate target.

    Variants of a kind take turns; a span-level variant goes to a trace whose root always
    reaches its operation, so every planned injection really happens.
    """
    reach = {r: _reach(state.model, r, certain=False) for r in set(roots)}
    certain = {r: _reach(state.model, r, certain=True) for r in set(roots)}
    order = [i for i, r in enumerate(roots) if not reach[r] & state.rate_ops]
    state.rng.shuffle(order)
    #: Per target, how far into ``order`` it has looked (what it skipped stays unusable).
    cursor: dict[str, int] = {}
    out: dict[int, Injection] = {}
    for kind in (k for k in state.plan.rates if k not in METRIC_KINDS):
        variants = trace_variants(kind)
        whole = kind in TRACE_KINDS
        for n in range(state.plan.count(kind, state.traces)):
            op, variant = variants[n % len(variants)]
            key = "" if whole else op
            at = cursor.get(key, 0)
            while at < len(order) and (
                order[at] in out or not (whole or op in certain[roots[order[at]]])
            ):
                at += 1
            cursor[key] = at + 1
            if at < len(order):
                out[order[at]] = Injection(kind, op, variant)
    return out


def _reach(model: SystemModel, root: str, *, certain: bool) -> set[str]:
    """Operations an execution of ``root`` reaches (always, or possibly)."""
    seen = {root}
    stack = [root]
    while stack:
        for call in model.operations[stack.pop()].plan:
            if certain and (call.probability < 1 or call.repeat[0] < 1):
                continue
            if call.callee not in seen:
                seen.add(call.callee)
                stack.append(call.callee)
    return seen


def _trace_documents(
    state: RunState, units: list[Unit]
) -> tuple[list[dict[str, Any]], list[ItemLabel], list[dict[str, Any]], list[ItemLabel]]:
    """One trace document and one log document per minute of requests."""
    chunks: dict[int, list[Unit]] = {}
    for u in units:
        chunks.setdefault((u.start - state.start) // DOC_NS, []).append(u)
    traces: list[dict[str, Any]] = []
    logs: list[dict[str, Any]] = []
    span_labels: list[ItemLabel] = []
    log_labels: list[ItemLabel] = []
    for _, chunk in sorted(chunks.items()):
        spans = [s for u in chunk for s in u.spans]
        doc, labels = encode_document(spans, state.resources, len(traces))
        traces.append(doc)
        span_labels += labels
        records = [x for u in chunk for x in u.logs]
        if records:
            doc, labels = encode_document(records, state.resources, len(logs))
            logs.append(doc)
            log_labels += labels
    return traces, span_labels, logs, log_labels


def main(argv: Sequence[str] | None = None) -> int:
    """Write ``spec/``, ``baseline/`` and ``drifted/`` under OUT_DIR."""
    parser = argparse.ArgumentParser(prog="python -m sidecar.synth.telemetry")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--traces", type=int, default=2000)
    parser.add_argument("--start-ns", type=int, default=DEFAULT_START_NS)
    args = parser.parse_args(argv)
    began = time.perf_counter()
    model = write_system_spec(args.out_dir / "spec")
    baseline = generate(
        model, seed=args.seed, traces=args.traces, start_ns=args.start_ns, drift=DriftPlan.none()
    )
    write_dataset(args.out_dir / "baseline", baseline)
    drifted = generate(
        model, seed=args.seed + 1, traces=args.traces, start_ns=baseline.end_ns,
        drift=DriftPlan.default(),
    )  # fmt: skip
    write_dataset(args.out_dir / "drifted", drifted)
    for name, g in (("baseline", baseline), ("drifted", drifted)):
        print(
            f"{name}: {len(g.span_labels)} spans, {len(g.log_labels)} logs, "
            f"{len(g.metric_labels)} points; drift {drift_counts(g.labels)}; "
            f"benign {benign_counts(g.labels)}"
        )
    print(f"written to {args.out_dir} in {time.perf_counter() - began:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
