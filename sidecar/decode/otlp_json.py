"""OTLP JSON (what the collector's file exporter writes) into evidence batches.

A file holds one whole document or one document per line (JSON Lines): when its first or
second non-blank line parses on its own the file is read as lines, so one broken line costs
only itself. Each document holds ``resourceSpans``, ``resourceLogs`` or ``resourceMetrics``
and becomes one batch, rows in document order (resource -> scope -> span / log record; for
metrics, metric -> data point). ``json_fields`` states what is accepted; ``columns`` and
``values`` state how fields become columns. Per signal:

- spans: ids, times, kind, ``status.code``, name;
- log records: ``timeUnixNano`` (``observedTimeUnixNano`` when it is 0) as start and end,
  ``severityNumber``, ids, body as text, name and ``event_name`` from the ``eventName`` field
  or else the ``event.name`` attribute;
- metric data points: ``timeUnixNano`` as start and end (a point is an instant), the metric
  name, the value (``asDouble``/``asInt``; ``sum / count`` for histogram, exponential
  histogram and summary points, NaN when there is no sum or no count) and the first
  exemplar's trace and span.

A malformed document is fatal for that document only: :class:`OtlpDecodeError` names the
file, the line and the field. :func:`decode_json_files` reports it and goes on with the next one.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sidecar.decode.columns import Columns
from sidecar.decode.gcpause import paused_gc
from sidecar.decode.json_fields import (
    ITEMS,
    METRIC_DATA,
    SCOPES,
    TOP_KEYS,
    FieldError,
    arr,
    find_defect,
    signal_of,
)
from sidecar.decode.json_signals import decode_resources
from sidecar.decode.problems import OnError, OtlpDecodeError, report
from sidecar.evidence.batch import EvidenceBatch, Signal, StringPool

#: What the fast path raises on input it was not written for (the validator then says where).
_BROKEN = (FieldError, TypeError, ValueError, AttributeError, KeyError, IndexError,
           OverflowError, RecursionError)  # fmt: skip


@dataclass(slots=True)
class JsonDocument:
    """One parsed document: the dict (kept so a writer can annotate it) and where it was."""

    source: str
    line: int
    doc: dict[str, Any]
    signal: Signal
    #: Bytes of the document's text in the file (for progress reports).
    size: int = 0


def iter_documents(path: Path, on_error: OnError | None = None) -> Iterator[JsonDocument]:
    """The documents of a file in file order.

    A document that is not JSON, or not OTLP at the top level, raises
    :class:`OtlpDecodeError`; with ``on_error`` it is reported there and skipped instead.
    """
    source = str(path)
    with path.open("rb") as file:
        lines = enumerate(file, 1)
        first: list[tuple[int, bytes]] = []
        for number, raw in lines:
            if raw.strip():
                first.append((number, raw))
                if len(first) == 2:
                    break
        parsed = [_parse(source, number, raw) for number, raw in first]
        rest: Iterator[JsonDocument | OtlpDecodeError]
        rest = (_parse(source, n, raw) for n, raw in lines if raw.strip())
        if len(parsed) == 2 and all(isinstance(p, OtlpDecodeError) for p in parsed):
            # Neither line stands alone: one document spread over lines (pretty-printed).
            file.seek(0)
            parsed = [_parse(source, 1, file.read(), whole=True)]
            rest = iter(())
        for item in itertools.chain(parsed, rest):
            if isinstance(item, OtlpDecodeError):
                report(item, on_error)
            else:
                yield item


def _parse(
    source: str, line: int, raw: bytes, whole: bool = False
) -> JsonDocument | OtlpDecodeError:
    """One document from its text, or the error that says why not."""
    try:
        # NaN and Infinity literals are accepted: Python writers emit them (the recorded
        # Online Boutique metrics hold some) and a double field has a value for each.
        with paused_gc():
            # Without its line break, so an error at the end of a line is not "line 2".
            doc = json.loads(raw if whole else raw.rstrip(b"\r\n"))
    except json.JSONDecodeError as exc:
        at = line + exc.lineno - 1 if whole else line
        return OtlpDecodeError(
            source, f"line {at}", f"invalid JSON: {exc.msg} (column {exc.colno})"
        )
    except UnicodeDecodeError as exc:
        return OtlpDecodeError(source, f"line {line}", f"invalid JSON: not UTF-8 ({exc.reason})")
    except (ValueError, RecursionError) as exc:
        return OtlpDecodeError(source, f"line {line}", f"invalid JSON: {exc}")
    try:
        return JsonDocument(source, line, doc, signal_of(doc), len(raw))
    except FieldError as bad:
        return OtlpDecodeError(source, f"line {line}", bad.reason)


def decode_document(
    doc: Any,
    attribute_keys: Sequence[str],
    pool: StringPool | None = None,
    *,
    source: str = "<request>",
    line: int = 1,
) -> EvidenceBatch:
    """One parsed OTLP JSON document as a batch (codes in ``pool`` when given).

    A malformed document raises :class:`OtlpDecodeError` and may leave some of its strings
    in ``pool`` (harmless: codes are only looked up, never counted).
    """
    try:
        signal = signal_of(doc)
        key = TOP_KEYS[signal]
        cols = Columns(attribute_keys, pool)
        with paused_gc():
            rows = decode_resources(signal, arr(doc[key], key), cols)
        batch = cols.build(signal, rows)
        if len(batch) and min(int(batch.start_ns.min()), int(batch.end_ns.min())) < 0:
            raise ValueError("negative time")
    except _BROKEN as exc:
        raise _explain(doc, source, line, exc) from exc
    return batch


def _explain(doc: Any, source: str, line: int, exc: BaseException) -> OtlpDecodeError:
    """The error for a document the fast path could not read, with the validator's position."""
    defect = find_defect(doc)
    if defect is None:  # the validator and the fast path disagree: still say something
        return OtlpDecodeError(
            source, f"line {line}", f"cannot decode ({type(exc).__name__}: {exc})"
        )
    where, reason = defect
    return OtlpDecodeError(source, f"line {line}, {where}" if where else f"line {line}", reason)


def decode_json_files(
    paths: Iterable[Path],
    attribute_keys: Sequence[str],
    pool: StringPool | None = None,
    on_error: OnError | None = None,
) -> Iterator[tuple[JsonDocument, EvidenceBatch]]:
    """Every document of every file with its batch; with ``on_error``, bad ones are skipped."""
    for path in paths:
        for document in iter_documents(path, on_error):
            try:
                batch = decode_document(
                    document.doc, attribute_keys, pool, source=document.source, line=document.line
                )
            except OtlpDecodeError as exc:
                report(exc, on_error)
                continue
            yield document, batch


def iter_items(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The objects of a decoded document that became rows, in row order."""
    signal = signal_of(doc)
    scopes, items = SCOPES[signal], ITEMS[signal]
    for rs in doc[TOP_KEYS[signal]] or ():
        for ss in rs.get(scopes) or ():
            for item in ss.get(items) or ():
                if signal != Signal.METRIC:
                    yield item
                    continue
                for field in METRIC_DATA:
                    data = item.get(field)
                    if data is not None:
                        yield from data.get("dataPoints") or ()
