"""Writing the contract attributes onto OTLP JSON documents and reading them back.

The real-data test uses the Online Boutique recordings under /work/shared/data/online-boutique
(Nezha paper, FSE 2023, IntelligentDDS/Nezha, MIT license), converted to OTLP JSON.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.annotate import annotate_document, write_jsonl
from sidecar.annotate.otlp_json_writer import any_value
from sidecar.decode import decode_document, iter_documents, iter_items
from sidecar.evidence.annotations import (
    DRIFT_KIND_BIT,
    Annotations,
    CorrelationStatus,
    DriftClass,
    DriftLevel,
    MatchType,
)
from sidecar.evidence.batch import EvidenceBatch, StringPool

DATA = Path("/work/shared/data/online-boutique")


def fake_annotations(n: int) -> Annotations:
    """Row i: node ``node-i``, confidence i/n, pii_exposure on odd rows, rule r<i%3> on some."""
    labels = StringPool(["ctx", *(f"node-{i}" for i in range(n)), "r0", "r1", "r2"])
    rules = [[f"r{k}" for k in range(i % 3)] for i in range(n)]
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = np.cumsum([len(r) for r in rules])
    return Annotations(
        labels=labels,
        spec_node=np.asarray([labels.find(f"node-{i}") for i in range(n)], np.int32),
        context=np.full(n, labels.find("ctx"), np.int32),
        match_type=np.full(n, MatchType.DETERMINISTIC, np.uint8),
        confidence=np.linspace(0, 1, n, dtype=np.float32),
        status=np.full(n, CorrelationStatus.PARTIAL, np.uint8),
        drift_score=np.full(n, 0.5, np.float32),
        drift_level=np.full(n, DriftLevel.LOW, np.uint8),
        drift_class=np.full(n, DriftClass.BENIGN, np.uint8),
        drift_kinds=np.asarray([DRIFT_KIND_BIT["pii_exposure"] * (i % 2) for i in range(n)]).astype(
            np.uint32
        ),
        rule_offsets=offsets,
        rule_codes=np.asarray([labels.find(r) for rs in rules for r in rs], np.int32),
        evidence_id=np.arange(1, n + 1, dtype=np.uint64),
        spec_version="abc123",
    )


def _without_behavior(batch: EvidenceBatch, row: int) -> dict[str, str]:
    return {k: v for k, v in batch.attributes_of(row).items() if not k.startswith("behavior.")}


def _assert_same_except_annotations(before: EvidenceBatch, after: EvidenceBatch) -> None:
    assert len(before) == len(after)
    for column in ("signal", "trace_hi", "trace_lo", "span_id", "parent_id", "start_ns",
                   "end_ns", "kind", "status", "severity", "ex_span_id"):  # fmt: skip
        assert np.array_equal(getattr(before, column), getattr(after, column)), column
    assert np.array_equal(before.value, after.value, equal_nan=True)
    for row in range(len(before)):
        for column in ("service", "name", "body", "event_name", "http_route"):
            assert before.text(column, row) == after.text(column, row)
        assert _without_behavior(after, row) == _without_behavior(before, row)


KV = [{"key": "keep", "value": {"stringValue": "me"}},
      {"key": "behavior.confidence", "value": {"doubleValue": 0.99}}]  # fmt: skip
DOCS: list[dict[str, Any]] = [
    {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "cart"}}]},
        "scopeSpans": [{"spans": [{"name": "a", "attributes": KV}, {"name": "b"}]},
                       {"spans": [{"name": "c", "attributes": []}]}]}]},
    {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "5", "body": {"stringValue": "hi"}, "attributes": KV}]}]}]},
    {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "g", "gauge": {"dataPoints": [{"asDouble": 1.0}, {"asInt": "2"}]}},
        {"name": "h", "histogram": {"dataPoints": [{"count": "2", "sum": 3.0,
                                                    "attributes": KV}]}}]}]}]},
]  # fmt: skip


@pytest.mark.parametrize("original", DOCS, ids=["spans", "logs", "metrics"])
def test_annotations_land_on_their_rows(original: dict[str, Any]) -> None:
    doc = copy.deepcopy(original)
    before = decode_document(doc, ("keep",))
    annotations = fake_annotations(len(before) + 2)
    assert annotate_document(doc, annotations, start=2) == len(before)
    after = decode_document(doc, ("keep",))
    _assert_same_except_annotations(before, after)
    for row in range(len(after)):
        got = after.attributes_of(row)
        assert got["behavior.spec_node_id"] == f"node-{row + 2}"
        assert got["behavior.evidence_id"] == f"{row + 3:016x}"
        assert got["behavior.context"] == "ctx"
        assert got["behavior.match_type"] == "deterministic"
        assert got["behavior.correlation_status"] == "partial"
        assert got["behavior.drift_level"] == "low" and got["behavior.drift_class"] == "benign"
        assert got["behavior.drift_kinds"] == ("pii_exposure" if row % 2 else "")
        assert got["behavior.rule_ids"] == ",".join(f"r{k}" for k in range((row + 2) % 3))
        assert got["behavior.spec_version"] == "abc123"
        expected = round(float(annotations.confidence[row + 2]), 4)
        assert float(got["behavior.confidence"]) == pytest.approx(expected)
    # The old behavior.* value was replaced, not kept beside the new one; others stay first.
    old = [kv["key"] for kv in next(iter_items(original)).get("attributes", ())]
    kept = [k for k in old if not k.startswith("behavior.")]
    new = [kv["key"] for kv in next(iter_items(doc))["attributes"]]
    assert new == [*kept, *annotations.attributes(2)]


def test_annotating_twice_is_the_same_as_once() -> None:
    once, twice = copy.deepcopy(DOCS[0]), copy.deepcopy(DOCS[0])
    annotations = fake_annotations(3)
    annotate_document(once, annotations)
    annotate_document(twice, annotations)
    annotate_document(twice, annotations)
    assert once == twice


def test_values_are_otlp_any_values() -> None:
    doc = copy.deepcopy(DOCS[0])
    annotate_document(doc, fake_annotations(3))
    third = doc["resourceSpans"][0]["scopeSpans"][1]["spans"][0]
    values = {kv["key"]: kv["value"] for kv in third["attributes"]}
    assert values["behavior.spec_node_id"] == {"stringValue": "node-2"}
    assert values["behavior.confidence"] == {"doubleValue": 1.0}
    rules = [{"stringValue": "r0"}, {"stringValue": "r1"}]
    assert values["behavior.rule_ids"] == {"arrayValue": {"values": rules}}
    assert values["behavior.drift_kinds"] == {"arrayValue": {"values": []}}
    assert any_value(float("nan")) == {"doubleValue": "NaN"}
    assert any_value(float("-inf")) == {"doubleValue": "-Infinity"}


def test_too_few_annotations() -> None:
    with pytest.raises(ValueError, match="annotations end at row 2"):
        annotate_document(copy.deepcopy(DOCS[0]), fake_annotations(2))


def test_jsonl_round_trip_of_real_traces(tmp_path: Path) -> None:
    source = DATA / "fault-currency-cpu" / "logs.json"
    if not source.is_file():
        pytest.skip("Online Boutique recordings absent")
    (document,) = iter_documents(source)
    before = decode_document(document.doc, ())
    annotations = fake_annotations(len(before))
    docs = [document.doc, copy.deepcopy(DOCS[0])]
    assert annotate_document(docs[0], annotations) == len(before) == 13134
    annotate_document(docs[1], fake_annotations(3))
    out = tmp_path / "out.jsonl"
    assert write_jsonl(out, docs) == 2
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and ", " not in lines[1]
    read = list(iter_documents(out))
    assert [(d.line, d.signal.name) for d in read] == [(1, "LOG"), (2, "SPAN")]
    after = decode_document(read[0].doc, ())
    _assert_same_except_annotations(before, after)
    assert after.attributes_of(13133)["behavior.evidence_id"] == f"{13134:016x}"
    assert json.loads(lines[1]) == docs[1]
