"""Ground truth for generated telemetry: one label per item, window truths, and the dataset files.

Item labels follow **document order**, exactly as a decoder produces batch rows: resource ->
scope -> span (or log record); for metrics, resource -> scope -> metric -> data point. Label
``i`` of a signal belongs to row ``i`` of the concatenation of that signal's documents.

A dataset directory holds:

- ``traces.json``, ``logs.json``, ``metrics.json``: OTLP JSON, one document per line (the
  collector file exporter's layout);
- ``labels.jsonl``: one JSON object per item: every span label (``traces.json`` in line order,
  each document in document order), then every log label, then every metric data point label;
- ``windows.json``: the window-level truths of the rate kinds.

A label is ``{"signal", "doc", "trace_id", "span_id", "role", "name", "spec_node", "binding",
"via", "drift", "benign", "detail"}``:

- ``signal``: ``span|log|metric``; ``doc``: line number (0-based) of its document in its file;
- ``role``: ``server|client|producer|consumer|internal|db|log|point``;
- ``spec_node``: the node the item implements, or null;
- ``binding``: ``deterministic`` (the item's own fields, or for a log its span's, name the node
  through a spec binding), ``heuristic`` (only similarity or call-graph position can), ``none``
  (``spec_node`` is null);
- ``via``: how the truth is reachable: ``binding``, ``span`` (a log joined to its span),
  ``parent`` (an internal/db span inside its operation), ``similarity`` (a renamed span),
  ``ignore`` (matched by an ignore rule), or null;
- ``drift``: injected drift kinds; ``benign``: benign variations the item shows;
- ``detail``: a human note on the injection (which callee, attribute, policy ...), or null.

For metric data points ``trace_id``/``span_id`` are those of the point's exemplar ("" when it
has none). Documents are encoded by :mod:`sidecar.synth.otlp_records`, from records that carry
their label, in one pass: the order of labels and the order of items cannot disagree.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIGNAL_FILES = (("span", "traces.json"), ("log", "logs.json"), ("metric", "metrics.json"))


@dataclass(slots=True)
class ItemLabel:
    """The truth about one span, log record or metric data point."""

    signal: str
    trace_id: str
    span_id: str
    role: str
    name: str
    spec_node: str | None
    binding: str
    via: str | None
    drift: list[str] = field(default_factory=list)
    benign: list[str] = field(default_factory=list)
    detail: str | None = None
    doc: int = 0

    def to_json(self) -> dict[str, Any]:
        """The label as one ``labels.jsonl`` object."""
        return {
            "signal": self.signal,
            "doc": self.doc,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "role": self.role,
            "name": self.name,
            "spec_node": self.spec_node,
            "binding": self.binding,
            "via": self.via,
            "drift": self.drift,
            "benign": self.benign,
            "detail": self.detail,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ItemLabel:
        """Read one ``labels.jsonl`` object."""
        return cls(
            data["signal"],
            data["trace_id"],
            data["span_id"],
            data["role"],
            data["name"],
            data["spec_node"],
            data["binding"],
            data["via"],
            list(data["drift"]),
            list(data["benign"]),
            data.get("detail"),
            int(data.get("doc", 0)),
        )


@dataclass(frozen=True, slots=True)
class WindowTruth:
    """A rate drift: ``kind`` holds for ``spec_node`` over ``[window_start_ns, window_end_ns)``."""

    kind: str
    spec_node: str
    window_start_ns: int
    window_end_ns: int
    #: Executions (server spans) of the node inside the window.
    samples: int

    def to_json(self) -> dict[str, Any]:
        """The truth as one ``windows.json`` entry."""
        return {
            "kind": self.kind,
            "spec_node": self.spec_node,
            "window_start_ns": self.window_start_ns,
            "window_end_ns": self.window_end_ns,
            "samples": self.samples,
        }


@dataclass(slots=True)
class Generated:
    """Generated OTLP JSON documents with their labels, aligned per signal."""

    traces: list[dict[str, Any]]
    logs: list[dict[str, Any]]
    metrics: list[dict[str, Any]]
    span_labels: list[ItemLabel]
    log_labels: list[ItemLabel]
    metric_labels: list[ItemLabel]
    windows: list[WindowTruth]
    start_ns: int
    end_ns: int

    @property
    def labels(self) -> list[ItemLabel]:
        """Every label in ``labels.jsonl`` order: spans, logs, metric data points."""
        return [*self.span_labels, *self.log_labels, *self.metric_labels]


@dataclass(frozen=True, slots=True)
class LabelSet:
    """The truth read back from a dataset directory."""

    items: list[ItemLabel]
    windows: list[WindowTruth]

    def of(self, signal: str) -> list[ItemLabel]:
        """The labels of one signal, in document order."""
        return [label for label in self.items if label.signal == signal]


def write_dataset(out_dir: Path, generated: Generated) -> None:
    """Write the documents, ``labels.jsonl`` and ``windows.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = {"span": generated.traces, "log": generated.logs, "metric": generated.metrics}
    for signal, name in SIGNAL_FILES:
        (out_dir / name).write_text("".join(_line(doc) for doc in docs[signal]))
    (out_dir / "labels.jsonl").write_text("".join(_line(x.to_json()) for x in generated.labels))
    windows = [w.to_json() for w in generated.windows]
    (out_dir / "windows.json").write_text(json.dumps(windows, indent=1) + "\n")


def read_labels(directory: Path) -> LabelSet:
    """Read ``labels.jsonl`` and ``windows.json`` of a dataset directory."""
    with (directory / "labels.jsonl").open() as fh:
        items = [ItemLabel.from_json(json.loads(line)) for line in fh if line.strip()]
    windows = [WindowTruth(**w) for w in json.loads((directory / "windows.json").read_text())]
    return LabelSet(items, windows)


def drift_counts(labels: Iterable[ItemLabel]) -> dict[str, int]:
    """Items per drift kind."""
    return dict(sorted(Counter(k for label in labels for k in label.drift).items()))


def benign_counts(labels: Iterable[ItemLabel]) -> dict[str, int]:
    """Items per benign variation."""
    return dict(sorted(Counter(v for label in labels for v in label.benign).items()))


def _line(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"
