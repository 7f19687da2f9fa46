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
from sidecar.evidence.annotations import Annotations


def annotate_document(doc: dict[str, Any], annotations: Annotations, start: int = 0) -> int:
    """Write rows ``start``... of ``annotations`` onto the document's items; rows consumed."""
    row = start
    total = len(annotations)
    for item in iter_items(doc):
        if row >= total:
            raise ValueError(f"annotations end at row {total}, the document has more items")
        kept = [
            kv
            for kv in item.get("attributes") or ()
            if not str(kv.get("key", "")).startswith(BEHAVIOR_PREFIX)
        ]
        kept.extend(
            {"key": key, "value": any_value(value)}
            for key, value in annotations.attributes(row).items()
        )
        item["attributes"] = kept
        row += 1
    return row - start


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
