"""Annotations to a CorrelateResponse: every row reads back as ``Annotations.attributes``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sidecar.annotate import encode_annotations
from sidecar.decode.otlp_json import iter_documents
from sidecar.decode.projection import decode_projection
from sidecar.engine import Engine
from sidecar.evidence.annotations import Annotations
from sidecar.evidence.batch import StringPool
from sidecar.protocol import correlation_pb2 as pb
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import index_from_disk
from sidecar.testing import otlp_json_to_proto, project_otlp, response_attributes

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "online-boutique" / "specs"
DATA = Path("/work/shared/data/online-boutique")


@pytest.fixture(scope="module")
def index() -> RuntimeIndex:
    return index_from_disk(EXAMPLE)


def annotations(rows: int = 3) -> Annotations:
    labels = StringPool(["unused-1", "node:a", "ctx", "rule.x", "unused-2", "rule.y"])
    return Annotations(
        labels=labels,
        spec_node=np.array([2, 0, 2][:rows], np.int32),
        context=np.array([3, 0, 3][:rows], np.int32),
        match_type=np.array([1, 0, 2][:rows], np.uint8),
        confidence=np.array([0.9, np.nan, 1.5][:rows], np.float32),
        status=np.array([0, 2, 1][:rows], np.uint8),
        drift_score=np.array([0.0, 0.25, -1][:rows], np.float32),
        drift_level=np.array([0, 1, 3][:rows], np.uint8),
        drift_class=np.array([0, 1, 2][:rows], np.uint8),
        drift_kinds=np.array([0, 1, (1 << 16) | 4][:rows], np.uint32),
        rule_offsets=np.array([0, 2, 2, 3][: rows + 1], np.int64),
        rule_codes=np.array([4, 6, 6][: [0, 2, 2, 3][rows]], np.int32),
        evidence_id=np.array([1, 2**64 - 1, 77][:rows], np.uint64),
        spec_version="abc",
    )


def test_rows_read_back_and_only_used_labels_are_sent() -> None:
    a = annotations()
    response = pb.CorrelateResponse.FromString(encode_annotations(a).SerializeToString())
    assert list(response.strings) == ["", "node:a", "ctx", "rule.x", "rule.y"]
    got = response_attributes(response)
    want = [a.attributes(i) for i in range(len(a))]
    # Scores are clipped into 0..1 (NaN as 0): the processor rejects anything else.
    want[1]["behavior.confidence"], want[2]["behavior.confidence"] = 0.0, 1.0
    want[2]["behavior.drift_score"] = 0.0
    assert got == want
    assert got[2]["behavior.drift_kinds"] == ["unknown_service", "broken_telemetry"]
    assert got[1]["behavior.evidence_id"] == "ffffffffffffffff"
    assert response.rows == 3 and response.spec_version == "abc"
    assert not response.HasField("projection")


def test_widths_and_the_projection() -> None:
    a = annotations()
    projection = pb.Projection(version=9, all_attributes=True)
    r = encode_annotations(a, projection)
    widths = {
        "spec_node_id": 4,
        "context": 4,
        "match_type": 1,
        "confidence": 4,
        "correlation_status": 1,
        "drift_score": 4,
        "drift_level": 1,
        "drift_class": 1,
        "drift_kinds": 4,
        "rule_counts": 4,
        "evidence_id": 8,
    }
    for field, width in widths.items():
        assert len(getattr(r, field)) == 3 * width, field
    assert len(r.rule_ids) == 3 * 4
    assert r.projection.version == 9


def test_no_rows() -> None:
    r = encode_annotations(annotations(0))
    assert r.rows == 0 and list(r.strings) == [""] and response_attributes(r) == []


@pytest.mark.skipif(not DATA.is_dir(), reason="Online Boutique recordings absent")
def test_engine_annotations_of_real_spans_round_trip(index: RuntimeIndex) -> None:
    doc = next(iter(iter_documents(DATA / "baseline" / "traces.json"))).doc
    doc = json.loads(json.dumps(doc))
    doc["resourceSpans"] = doc["resourceSpans"][:4]
    batch = decode_projection(project_otlp(otlp_json_to_proto(doc)), index.attribute_keys)
    result = Engine(index).process(batch)
    got = response_attributes(encode_annotations(result.annotations))
    assert got == [result.annotations.attributes(i) for i in range(len(batch))]
    assert any(row["behavior.spec_node_id"] for row in got)
