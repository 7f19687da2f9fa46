"""The contract attributes written onto OTLP JSON documents, and documents to JSON Lines.

Rows of a batch are the document's spans, log records or metric data points in document
order (``sidecar.decode.otlp_json.iter_items``), so row ``start + i`` annotates item ``i``.
Writing replaces every ``behavior.*`` attribute an item already has, so annotating twice (a
replay of a replay) leaves one set. Values are OTLP JSON AnyValues: strings as
``stringValue``, doubles as ``doubleValue`` (non-finite ones as protojson's ``"NaN"`` /
``"Infinity"`` strings), string lists as ``arrayValue``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sidecar.decode.otlp_json import iter_items
from sidecar.decode.semconv import BEHAVIOR_PREFIX
from sidecar.evidence.annotations import (
    CONFIDENCE,
    CONTEXT,
    CORRELATION_STATUS,
    DRIFT_CLASS,
    DRIFT_KINDS,
    DRIFT_LEVEL,
    DRIFT_SCORE,
    EVIDENCE_ID,
    MATCH_TYPE,
    RULE_IDS,
    SPEC_NODE_ID,
    SPEC_VERSION,
    Annotations,
)


def annotate_document(doc: dict[str, Any], annotations: Annotations, start: int = 0) -> int:
    """Write rows ``start``... of ``annotations`` onto the document's items; rows consumed."""
    return AnnotationWriter(annotations).annotate(doc, start)


class AnnotationWriter:
    """Writes one batch's annotations onto its documents (create once per batch).

    Most of a row's attributes repeat across rows (node, context, match type, status, level,
    class, kinds, rules); their AnyValues are built once per distinct combination and shared,
    and only confidence, drift score and evidence id are built per row.
    """

    def __init__(self, annotations: Annotations) -> None:
        a = annotations
        self.total = len(a)
        repeated = (a.spec_node, a.context, a.match_type, a.status, a.drift_level, a.drift_class,
                    a.drift_kinds)  # fmt: skip
        self._cols = [c.tolist() for c in repeated]
        self._offsets = a.rule_offsets.tolist()
        self._rules = a.rule_codes.tolist()
        self._conf = a.confidence.tolist()
        self._score = a.drift_score.tolist()
        self._evidence = a.evidence_id.tolist()
        self._version = {"key": SPEC_VERSION, "value": {"stringValue": a.spec_version}}
        self._static: dict[tuple[int, ...], list[dict[str, Any]]] = {}
        self._annotations = a

    def _static_part(self, row: int) -> list[dict[str, Any]]:
        lo, hi = self._offsets[row], self._offsets[row + 1]
        key = (*(c[row] for c in self._cols), *self._rules[lo:hi])
        part = self._static.get(key)
        if part is None:
            attrs = self._annotations.attributes(row)
            part = [{"key": k, "value": any_value(attrs[k])} for k in _STATIC_KEYS]
            self._static[key] = part
        return part

    def annotate(self, doc: dict[str, Any], start: int = 0) -> int:
        """Write rows ``start``... onto the document's items; rows consumed."""
        row = start
        for item in iter_items(doc):
            if row >= self.total:
                raise ValueError(
                    f"annotations end at row {self.total}, the document has more items"
                )
            kept = [
                kv
                for kv in item.get("attributes") or ()
                if not str(kv.get("key", "")).startswith(BEHAVIOR_PREFIX)
            ]
            s = self._static_part(row)
            kept += [
                s[0], s[1], s[2],
                {"key": CONFIDENCE, "value": {"doubleValue": round(self._conf[row], 4)}},
                s[3],
                {"key": DRIFT_SCORE, "value": {"doubleValue": round(self._score[row], 4)}},
                s[4], s[5], s[6], s[7],
                {"key": EVIDENCE_ID, "value": {"stringValue": f"{self._evidence[row]:016x}"}},
                self._version,
            ]  # fmt: skip
            item["attributes"] = kept
            row += 1
        return row - start


#: Contract attributes that repeat across rows, in the order they are written.
_STATIC_KEYS = (SPEC_NODE_ID, CONTEXT, MATCH_TYPE, CORRELATION_STATUS, DRIFT_LEVEL,
                DRIFT_CLASS, DRIFT_KINDS, RULE_IDS)  # fmt: skip


def any_value(value: object) -> dict[str, Any]:
    """A contract attribute value as an OTLP JSON AnyValue."""
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value if math.isfinite(value) else _WORDS[str(value)]}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    raise TypeError(f"no OTLP value for {type(value).__name__}")


_WORDS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def write_jsonl(path: Path, docs: Iterable[dict[str, Any]]) -> int:
    """Write documents one per line, compactly (the file exporter's layout); documents written."""
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for doc in docs:
            out.write(json.dumps(doc, separators=(",", ":"), ensure_ascii=False))
            out.write("\n")
            count += 1
    return count
