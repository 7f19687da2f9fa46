"""``make eval``: the engine against labelled synthetic telemetry with known answers.

Replays a generated dataset (``python -m sidecar.synth.telemetry OUT``) through the same
engine as every other path and compares each item's annotation with its label: correlation
top-1 accuracy by how the truth is reachable, precision and recall per drift kind, and the
share of benign items raised to medium/high. Prints what it measures, met or not.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sidecar.drift.baseline import BaselineLearner, BaselineProfile
from sidecar.drift.rates import RateTracker
from sidecar.engine import Engine, EngineResult
from sidecar.evidence.annotations import DRIFT_KIND_BIT, DRIFT_KIND_NAMES, DriftLevel
from sidecar.evidence.batch import EvidenceBatch
from sidecar.replay import replay
from sidecar.report import DriftReport
from sidecar.spec_index.startup import index_from_disk
from sidecar.synth.labels import ItemLabel, read_labels

GOALS = {"deterministic": 0.98, "heuristic": 0.90, "kind": 0.95, "benign_alerts": 0.01}
INPUT_FILES = ("traces.json", "logs.json", "metrics.json")


@dataclass(slots=True)
class Predictions:
    """Per item, in label order: node, drift kinds mask and level."""

    nodes: list[str] = field(default_factory=list)
    kinds: list[int] = field(default_factory=list)
    levels: list[int] = field(default_factory=list)

    def observe(self, batch: EvidenceBatch, result: EngineResult) -> None:
        """Collect one replayed batch (replay calls this in document order per signal)."""
        ann = result.annotations
        labels = ann.labels
        self.nodes.extend(labels[int(c)] for c in ann.spec_node)
        self.kinds.extend(int(k) for k in ann.drift_kinds)
        self.levels.extend(int(v) for v in ann.drift_level)


def learn(dataset: Path, spec: Path) -> BaselineProfile:
    """A baseline profile learned from the dataset's clean stretch."""
    rates = RateTracker(learner=BaselineLearner())
    engine = Engine(index_from_disk(spec), rates=rates)
    inputs = [dataset / "baseline" / name for name in INPUT_FILES]
    replay(engine, inputs, io.StringIO(), DriftReport())
    assert rates.learner is not None
    return rates.learner.profile(rates.series_ids)


def predict(dataset: Path, engine: Engine) -> Predictions:
    """Run the drifted part of a dataset through the engine."""
    preds = Predictions()
    inputs = [dataset / "drifted" / name for name in INPUT_FILES]
    stats = replay(engine, inputs, io.StringIO(), DriftReport(), observe=preds.observe)
    if stats.errors:
        raise RuntimeError(f"the generated dataset did not decode: {stats.errors[0]}")
    return preds


def correlation_accuracy(labels: Sequence[ItemLabel], preds: Predictions) -> dict[str, Any]:
    """Top-1 accuracy by binding (deterministic/heuristic) and by route (via)."""
    hits: Counter[str] = Counter()
    totals: Counter[str] = Counter()
    for label, node in zip(labels, preds.nodes, strict=True):
        if label.spec_node is None:
            continue
        for group in (label.binding, f"{label.binding}/{label.via}"):
            totals[group] += 1
            hits[group] += node == label.spec_node
    return {g: (hits[g] / totals[g], totals[g]) for g in sorted(totals)}


def kind_scores(
    labels: Sequence[ItemLabel], preds: Predictions
) -> dict[str, tuple[float, float, int]]:
    """Precision, recall and support per drift kind at item level."""
    truth = np.array([sum(DRIFT_KIND_BIT[k] for k in label.drift) for label in labels],
                     np.uint64)  # fmt: skip
    got = np.array(preds.kinds, np.uint64)
    out: dict[str, tuple[float, float, int]] = {}
    for kind in DRIFT_KIND_NAMES:
        bit = np.uint64(DRIFT_KIND_BIT[kind])
        t, p = (truth & bit) != 0, (got & bit) != 0
        tp, fp, fn = int((t & p).sum()), int((~t & p).sum()), int((t & ~p).sum())
        precision = tp / (tp + fp) if tp + fp else (1.0 if not t.any() else 0.0)
        recall = tp / (tp + fn) if tp + fn else 1.0
        out[kind] = (precision, recall, int(t.sum()))
    return out


def benign_alert_share(labels: Sequence[ItemLabel], preds: Predictions) -> tuple[float, int]:
    """Share of benign-only items (no injected drift) raised to medium or high."""
    benign = [lv for label, lv in zip(labels, preds.levels, strict=True)
              if label.benign and not label.drift]  # fmt: skip
    alerts = sum(lv >= DriftLevel.MEDIUM for lv in benign)
    return (alerts / len(benign) if benign else 0.0), len(benign)


def evaluate(dataset: Path) -> list[str]:
    """Evaluate and return the printed report lines."""
    rates = RateTracker(baseline=learn(dataset, dataset / "spec"))
    engine = Engine(index_from_disk(dataset / "spec"), rates=rates)
    labels = read_labels(dataset / "drifted").items
    preds = predict(dataset, engine)
    if len(preds.nodes) != len(labels):
        raise RuntimeError(f"{len(preds.nodes)} items replayed but {len(labels)} labels")
    lines = [f"dataset {dataset}: {len(labels)} labelled items", "", "correlation top-1:"]
    for group, (acc, n) in correlation_accuracy(labels, preds).items():
        goal = GOALS.get(group)
        verdict = "" if goal is None else ("  met" if acc >= goal else f"  NOT met (goal {goal})")
        lines.append(f"  {group:<28}{acc:8.4f}  of {n:6d}{verdict}")
    lines += ["", f"{'drift kind':<24}{'precision':>10}{'recall':>8}{'items':>7}"]
    for kind, (p, r, n) in kind_scores(labels, preds).items():
        ok = p >= GOALS["kind"] and r >= GOALS["kind"]
        lines.append(f"{kind:<24}{p:10.3f}{r:8.3f}{n:7d}  {'met' if ok else 'NOT met'}")
    share, n = benign_alert_share(labels, preds)
    verdict = "met" if share <= GOALS["benign_alerts"] else "NOT met"
    lines += [
        "",
        f"benign items raised to medium/high: {share:.4f} of {n} ({verdict}, goal <= 0.01)",
    ]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m sidecar.evaluation DATASET``."""
    parser = argparse.ArgumentParser(prog="python -m sidecar.evaluation")
    parser.add_argument("dataset", type=Path, help="output directory of sidecar.synth.telemetry")
    args = parser.parse_args(argv)
    print("\n".join(evaluate(args.dataset)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
