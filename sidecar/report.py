"""The drift report: per (context, spec node) and per service, aggregated over a replay.

Aggregation works on the annotation columns of each batch (numpy group-bys), so a report
over millions of items costs a few array passes per batch, not a Python loop per item.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from sidecar.evidence.annotations import (
    DRIFT_KIND_BIT,
    DRIFT_KIND_NAMES,
    Annotations,
    DriftClass,
    DriftLevel,
)
from sidecar.evidence.batch import EvidenceBatch

if TYPE_CHECKING:
    from sidecar.engine import Engine

EXEMPLARS = 5
_LEVELS = [lv.name.lower() for lv in DriftLevel]


@dataclass(slots=True)
class NodeSummary:
    """Counts for one (context, spec node) or one service."""

    items: int = 0
    levels: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_LEVELS, 0))
    kinds: dict[str, int] = field(default_factory=dict)
    semantic: int = 0
    benign: int = 0
    max_score: float = 0.0
    confidence_sum: float = 0.0
    exemplar_traces: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> int:
        """Items at medium or high level."""
        return self.levels["medium"] + self.levels["high"]

    def to_json(self) -> dict[str, Any]:
        """The report entry."""
        return {
            "items": self.items,
            "levels": self.levels,
            "kinds": dict(sorted(self.kinds.items(), key=lambda kv: -kv[1])),
            "semantic": self.semantic,
            "benign": self.benign,
            "max_drift_score": round(self.max_score, 4),
            "mean_confidence": round(self.confidence_sum / self.items, 4) if self.items else 0.0,
            "exemplar_trace_ids": self.exemplar_traces,
        }


@dataclass(slots=True)
class DriftReport:
    """Accumulates annotations batch by batch."""

    spec_version: str = ""
    items: int = 0
    by_signal: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    nodes: dict[tuple[str, str], NodeSummary] = field(default_factory=dict)
    services: dict[str, NodeSummary] = field(default_factory=dict)
    rate_findings: list[dict[str, Any]] = field(default_factory=list)
    #: Services ranked by the rate drift blamed on them (caller/callee localisation).
    rate_blame: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, batch: EvidenceBatch, ann: Annotations) -> None:
        """Fold one annotated batch into the report."""
        n = len(batch)
        if n == 0:
            return
        self.spec_version = ann.spec_version
        self.items += n
        for sig, count in zip(*np.unique(batch.signal, return_counts=True), strict=True):
            self.by_signal[("span", "log", "metric")[int(sig)]] += int(count)
        labels, pool = ann.labels, batch.pool
        node_key = ann.context.astype(np.int64) << 32 | ann.spec_node.astype(np.int64)
        for key, rows in _groups(node_key):
            name = (labels[int(key >> 32)], labels[int(key & 0xFFFFFFFF)])
            self._fold(self.nodes.setdefault(name, NodeSummary()), batch, ann, rows)
        for code, rows in _groups(batch.service.astype(np.int64)):
            self._fold(self.services.setdefault(pool[int(code)], NodeSummary()), batch, ann,
                       rows)  # fmt: skip

    def _fold(self, s: NodeSummary, batch: EvidenceBatch, ann: Annotations,
              rows: np.ndarray) -> None:  # fmt: skip
        s.items += len(rows)
        for level, count in zip(*np.unique(ann.drift_level[rows], return_counts=True),
                                strict=True):  # fmt: skip
            s.levels[_LEVELS[int(level)]] += int(count)
        masks = ann.drift_kinds[rows]
        for kind in DRIFT_KIND_NAMES:
            count = int(np.count_nonzero(masks & DRIFT_KIND_BIT[kind]))
            if count:
                s.kinds[kind] = s.kinds.get(kind, 0) + count
        s.semantic += int(np.count_nonzero(ann.drift_class[rows] == DriftClass.SEMANTIC))
        s.benign += int(np.count_nonzero(ann.drift_class[rows] == DriftClass.BENIGN))
        s.max_score = max(s.max_score, float(ann.drift_score[rows].max()))
        s.confidence_sum += float(ann.confidence[rows].sum())
        if len(s.exemplar_traces) < EXEMPLARS:
            alerting = rows[ann.drift_level[rows] >= DriftLevel.MEDIUM]
            for r in alerting[: EXEMPLARS - len(s.exemplar_traces)]:
                s.exemplar_traces.append(
                    f"{int(batch.trace_hi[r]):016x}{int(batch.trace_lo[r]):016x}"
                )

    def add_rates(self, engine: Engine) -> None:
        """Take the rate findings and the blame ranking from the engine's rate windows."""
        rates, operations = engine.rates, engine.index.operations
        self.rate_findings = rates.report()
        owners = {fid: op.services for fid, op in operations.items()}
        calls = {fid: op.calls for fid, op in operations.items()}
        self.rate_blame = rates.blame(owners, calls)

    def ranked_services(self) -> list[tuple[str, NodeSummary]]:
        """Services by alerting items, then by worst score."""
        return sorted(self.services.items(), key=lambda kv: (-kv[1].alerts, -kv[1].max_score,
                                                             kv[0]))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The whole report as a JSON-ready dict."""
        nodes = sorted(self.nodes.items(), key=lambda kv: (-kv[1].alerts, kv[0]))
        return {
            "spec_version": self.spec_version,
            "items": self.items,
            "by_signal": dict(self.by_signal),
            "nodes": [
                {"context": c, "spec_node_id": n or None, **s.to_json()} for (c, n), s in nodes
            ],
            "services": [{"service": name, **s.to_json()} for name, s in self.ranked_services()],
            "rate_findings": self.rate_findings,
            "rate_drift_by_service": [
                {"service": n, "score": round(v, 4)} for n, v in self.rate_blame
            ],
            "errors": self.errors,
        }

    def summary_lines(self, top: int = 15) -> list[str]:
        """A readable table for the terminal."""
        lines = [f"{self.items} items ({', '.join(f'{k} {v}' for k, v in self.by_signal.items())})"
                 f", spec version {self.spec_version[:12]}"]  # fmt: skip
        header = f"{'service':<24}{'items':>8}{'alerts':>8}{'low':>7}{'max':>6}  top kinds"
        lines += ["", header, "-" * len(header)]
        for name, s in self.ranked_services()[:top]:
            kinds = ", ".join(f"{k} {v}" for k, v in list(s.to_json()["kinds"].items())[:3])
            lines.append(f"{name or '(none)':<24}{s.items:>8}{s.alerts:>8}{s.levels['low']:>7}"
                         f"{s.max_score:>6.2f}  {kinds}")  # fmt: skip
        if self.rate_blame:
            lines += ["", "rate drift by service (blamed after caller/callee localisation):"]
            lines += [f"  {i}. {name:<24} score {v:.2f}"
                      for i, (name, v) in enumerate(self.rate_blame[:5], 1)]  # fmt: skip
        if self.rate_findings:
            lines += ["", "rate findings (sliding windows):"]
            lines += [f"  {f['kind']:<15} {f['spec_node_id']:<40} score {f['score']:.2f}  "
                      f"{f.get('detail', '')}" for f in self.rate_findings[:top]]  # fmt: skip
        if self.errors:
            lines += ["", f"{len(self.errors)} input error(s):"] + [f"  {e}" for e in self.errors]
        return lines


def _groups(keys: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(key, rows) for each distinct key."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    return [(int(sorted_keys[s]), order[s:e]) for s, e in zip(starts, ends, strict=True)]
