"""Offline replay: OTLP JSON files in, the same telemetry annotated out, plus a drift report.

Spans are processed before logs and logs before metrics, whatever order the inputs give, so
logs find their span and metric points their exemplar span. Documents are gathered into
batches of up to ``batch_rows`` items at document boundaries; a trace is checked as a whole
when its spans fall in one batch (the Online Boutique files fit in one).

A malformed document is reported as ``file: position: reason``, counted, skipped; the rest of
the replay still runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from sidecar.annotate.otlp_json_writer import AnnotationWriter
from sidecar.decode.otlp_json import JsonDocument, decode_document, iter_documents
from sidecar.decode.problems import OtlpDecodeError
from sidecar.engine import Engine
from sidecar.evidence.batch import EvidenceBatch, Signal, StringPool, concat_batches
from sidecar.report import DriftReport

SIGNAL_ORDER = (Signal.SPAN, Signal.LOG, Signal.METRIC)
DEFAULT_BATCH_ROWS = 500_000


@dataclass(slots=True)
class ReplayStats:
    """What a replay did."""

    documents: int = 0
    items: int = 0
    errors: list[str] = field(default_factory=list)


class Progress:
    """A one-line progress bar on a terminal; silent elsewhere."""

    def __init__(self, total_bytes: int, stream: TextIO = sys.stderr,
                 enabled: bool | None = None) -> None:  # fmt: skip
        self.total = max(total_bytes, 1)
        self.done = 0
        self.stream = stream
        self.enabled = stream.isatty() if enabled is None else enabled

    def advance(self, nbytes: int, items: int) -> None:
        """Account for work done and redraw."""
        self.done += nbytes
        if self.enabled:
            pct = min(100.0, 100.0 * self.done / self.total)
            bar = "#" * int(pct / 4)
            self.stream.write(f"\rreplay [{bar:<25}] {pct:5.1f}%  {items:,} items")
            self.stream.flush()

    def close(self) -> None:
        """End the line."""
        if self.enabled:
            self.stream.write("\n")


def _documents(
    paths: Sequence[Path], signal: Signal, stats: ReplayStats,
    contents: dict[Path, set[Signal]],
) -> Iterator[tuple[JsonDocument, str]]:  # fmt: skip
    """The documents of one signal. The first pass reads every file and records which signals
    it holds (``contents``); later passes skip files without documents of their signal."""
    # Errors are reported on the first pass only (later passes re-read only matching files).
    first = signal == SIGNAL_ORDER[0]
    report = stats.errors.append if first else _ignore
    for path in paths:
        if not first and signal not in contents.get(path, set()):
            continue
        held = contents.setdefault(path, set())
        try:
            for doc in iter_documents(path, on_error=lambda exc: report(str(exc))):
                held.add(doc.signal)
                if doc.signal == signal:
                    yield doc, str(path)
        except OSError as exc:
            report(f"{path}: cannot read: {exc.strerror}")


def _ignore(_: str) -> None:
    """Drop a message (second and third passes over the same files)."""


def replay(
    engine: Engine, inputs: Sequence[Path], out: TextIO, report: DriftReport, *,
    batch_rows: int = DEFAULT_BATCH_ROWS, progress: Progress | None = None,
    observe: Observer | None = None,
) -> ReplayStats:  # fmt: skip
    """Annotate every document of ``inputs`` into ``out`` (one JSON document per line)."""
    run = _Run(engine, out, report, progress, observe)
    keys = engine.index.attribute_keys
    contents: dict[Path, set[Signal]] = {}
    for signal in SIGNAL_ORDER:
        pool = StringPool()
        for doc, source in _documents(inputs, signal, run.stats, contents):
            try:
                batch = decode_document(doc.doc, keys, pool=pool, source=source, line=doc.line)
            except OtlpDecodeError as exc:
                run.stats.errors.append(str(exc))
                continue
            run.pending.append((doc, batch))
            run.rows += len(batch)
            if run.rows >= batch_rows:
                run.flush()
                pool = StringPool()
        run.flush()
    report.errors.extend(run.stats.errors)
    if progress is not None:
        progress.close()
    return run.stats


Observer = Callable[[EvidenceBatch, Any], None]


@dataclass(slots=True)
class _Run:
    """One replay's state: documents waiting for the engine, and where results go."""

    engine: Engine
    out: TextIO
    report: DriftReport
    progress: Progress | None
    observe: Observer | None
    stats: ReplayStats = field(default_factory=ReplayStats)
    pending: list[tuple[JsonDocument, EvidenceBatch]] = field(default_factory=list)
    rows: int = 0

    def flush(self) -> None:
        """Process the pending documents as one batch and write them annotated."""
        if not self.pending:
            return
        batch = concat_batches([b for _, b in self.pending])
        result = self.engine.process(batch)
        self.report.add(batch, result.annotations)
        if self.observe is not None:
            self.observe(batch, result)
        writer = AnnotationWriter(result.annotations)
        start = 0
        for doc, part in self.pending:
            start += writer.annotate(doc.doc, start)
            self.out.write(json.dumps(doc.doc, separators=(",", ":")))
            self.out.write("\n")
            self.stats.documents += 1
            self.stats.items += len(part)
            if self.progress is not None:
                self.progress.advance(doc.size, self.stats.items)
        self.pending, self.rows = [], 0
