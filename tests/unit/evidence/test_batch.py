"""The columnar batch: building, reading back, concatenating, evidence ids."""

import numpy as np
import pytest

from sidecar.evidence.annotations import evidence_ids
from sidecar.evidence.batch import (
    BatchBuilder,
    Signal,
    StringPool,
    concat_batches,
    id64,
    split_id128,
)


def two_batches() -> tuple[StringPool, list]:
    pool = StringPool()
    out = []
    for i in range(2):
        b = BatchBuilder(["app.id"], pool)
        b.add({"signal": Signal.SPAN, "name": pool.code(f"op{i}"), "span_id": i + 1},
              {"app.id": f"x{i}", "n": 3 + i, "ok": True})  # fmt: skip
        b.add({"signal": Signal.LOG, "body": pool.code("hello"), "start_ns": i}, {})
        out.append(b.build())
    return pool, out


def test_builder_columns_and_attributes() -> None:
    _, (a, _) = two_batches()
    assert len(a) == 2
    assert a.text("name", 0) == "op0" and a.text("body", 1) == "hello"
    assert a.attributes_of(0) == {"app.id": "x0", "n": "3", "ok": "true"}
    assert a.attributes_of(1) == {}
    assert a.text("app.id", 0) == "x0" and a.attr["app.id"][1] == 0
    assert a.attr_numbers.tolist()[1] == 3.0 and np.isnan(a.attr_numbers[0])


def test_concat_keeps_rows_and_ragged_attributes() -> None:
    _, batches = two_batches()
    both = concat_batches(batches)
    assert len(both) == 4
    assert [both.attributes_of(i) for i in range(4)] == [
        {"app.id": "x0", "n": "3", "ok": "true"},
        {},
        {"app.id": "x1", "n": "4", "ok": "true"},
        {},
    ]
    assert both.span_id.tolist() == [1, 0, 2, 0]
    assert [both.text("app.id", i) for i in range(4)] == ["x0", "", "x1", ""]


def test_concat_refuses_different_pools() -> None:
    b1 = BatchBuilder().build()
    b2 = BatchBuilder().build()
    with pytest.raises(ValueError, match="one StringPool"):
        concat_batches([b1, b2])


def test_evidence_ids_are_stable_and_distinct() -> None:
    _, batches = two_batches()
    both = concat_batches(batches)
    ids = evidence_ids(both)
    assert len(set(ids.tolist())) == 4 and (ids != 0).all()
    again = concat_batches(two_batches()[1])
    assert evidence_ids(again).tolist() == ids.tolist()  # same items, same ids, any process


def test_id_parsing() -> None:
    assert split_id128("0" * 31 + "1") == (0, 1)
    assert split_id128("xyz") == (0, 0)
    assert id64("00000000000000ff") == 255
    assert id64("nothex!!nothex!!") == 0
