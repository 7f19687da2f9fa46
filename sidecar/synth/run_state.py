"""The state one generation run shares: random source, drift windows, resources, executions.

Every part of the generator (:mod:`~sidecar.synth.traffic`, :mod:`~sidecar.synth.offspec_traces`,
:mod:`~sidecar.synth.metric_series`) draws from the one ``rng`` of a :class:`RunState`, in a
fixed order, so the same arguments give byte-identical output.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sidecar.synth.drift_injection import DriftPlan
from sidecar.synth.labels import ItemLabel
from sidecar.synth.otlp_records import LogRecord, SpanRecord
from sidecar.synth.system import Service, SystemModel

#: One millisecond in nanoseconds.
MS = 1_000_000
#: Spread (log-normal sigma) of generated durations around their median.
SIGMA = 0.35
_SDK = {"nodejs": "1.25.1", "java": "1.40.0", "python": "1.26.0", "dotnet": "1.9.0", "go": "1.28.0"}


@dataclass(slots=True)
class Unit:
    """What goes into one document together: one request trace (or probe) and its logs."""

    start: int
    spans: list[SpanRecord] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)


class RunState:
    """The model, drift plan, random source and tables of one generation run."""

    def __init__(
        self,
        model: SystemModel,
        plan: DriftPlan,
        *,
        seed: int,
        traces: int,
        start_ns: int,
        end_ns: int,
    ) -> None:
        self.model, self.plan, self.traces = model, plan, traces
        self.start, self.end = start_ns, end_ns
        self.rng = random.Random(seed)
        length = end_ns - start_ns
        self.windows = {
            k: (start_ns + round(a * length), start_ns + round(b * length))
            for k, (a, b) in plan.windows.items()
        }
        #: Rate-kind targets stay free of other drift and of benign variation even when the
        #: plan has no windows, so baseline and drifted data have the same shape.
        self.rate_ops = frozenset(plan.targets.values())
        self.target_kind = {plan.targets[k]: k for k in self.windows}
        #: Executions of each rate-kind target inside its window.
        self.samples = dict.fromkeys(self.windows, 0)
        #: OTLP resources (attribute lists) in order of first use, and the service of each.
        self.resources: list[list[tuple[str, Any]]] = []
        self.res_service: list[str] = []
        self.res_index: dict[tuple[str, str], int] = {}
        #: Implementing spans per operation, for metric exemplars.
        self.executions: dict[str, list[SpanRecord]] = {}

    def span(
        self, label: ItemLabel, *, res: int, scope: str, parent: str, kind: int, start: int
    ) -> SpanRecord:
        """A new span with a fresh id, in the trace and with the name its label gives."""
        label.span_id = self.new_id(64)
        return SpanRecord(
            res, scope, label.trace_id, label.span_id, parent, label.name, kind, start, start,
            label,
        )  # fmt: skip

    def new_id(self, bits: int) -> str:
        """A random non-zero id of ``bits`` bits as lower-case hex."""
        return f"{self.rng.getrandbits(bits - 1) | 1 << (bits - 2):0{bits // 4}x}"

    def in_window(self, kind: str, t: int) -> bool:
        """Whether ``t`` falls inside the window of rate kind ``kind``."""
        a, b = self.windows[kind]
        return a <= t < b

    def pod(self, svc: Service) -> int:
        """The resource of a randomly chosen pod of ``svc``."""
        return self.resource(svc.name, self.rng.choice(svc.pods), svc.version, svc.language)

    def resource(self, service: str, pod: str, version: str, language: str) -> int:
        """The index of a (service, pod) resource, created on first use."""
        key = (service, pod)
        if key not in self.res_index:
            self.res_index[key] = len(self.resources)
            self.res_service.append(service)
            self.resources.append([
                ("service.name", service), ("service.namespace", "bookshop"),
                ("service.version", version), ("service.instance.id", pod),
                ("k8s.namespace.name", "shop"), ("k8s.pod.name", pod),
                ("deployment.environment.name", "production"),
                ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.language", language),
                ("telemetry.sdk.version", _SDK[language]),
            ])  # fmt: skip
        return self.res_index[key]
