"""The correlator on hand-built batches against the Online Boutique example index."""

from pathlib import Path

import numpy as np
import pytest

from sidecar.correlate.correlator import Correlator
from sidecar.evidence.annotations import CorrelationStatus, MatchType
from sidecar.evidence.batch import BatchBuilder, EvidenceBatch, Signal, SpanKind
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import index_from_disk

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "online-boutique" / "specs"
TRACE = (0x1111, 0x2222)


@pytest.fixture(scope="module")
def index() -> RuntimeIndex:
    return index_from_disk(EXAMPLE)


def build(
    index: RuntimeIndex, rows: list[tuple[dict[str, object], dict[str, object]]]
) -> EvidenceBatch:
    b = BatchBuilder(index.attribute_keys)
    for fields, attrs in rows:
        code = b.pool.code
        row = {k: (code(v) if isinstance(v, str) else int(v)) for k, v in fields.items()}  # type: ignore[call-overload]
        row.setdefault("trace_hi", TRACE[0])
        row.setdefault("trace_lo", TRACE[1])
        b.add(row, attrs)
    return b.build()


def span(
    service: str, name: str, kind: SpanKind, span_id: int, parent: int = 0
) -> dict[str, object]:
    return {
        "signal": Signal.SPAN,
        "service": service,
        "name": name,
        "kind": kind,
        "span_id": span_id,
        "parent_id": parent,
        "start_ns": span_id,
        "end_ns": span_id + 10,
    }


def results(
    c: Correlator, batch: EvidenceBatch
) -> list[tuple[str, str, float, tuple[str, ...], int]]:
    cols = c.correlate(batch)
    return [
        (
            c.labels[int(cols.node[i])],
            MatchType(int(cols.match[i])).name.lower(),
            round(float(cols.confidence[i]), 2),
            c.rule_sets[int(cols.rule_set[i])],
            int(cols.status[i]),
        )
        for i in range(len(batch))
    ]


def test_bindings_joins_and_inheritance(index: RuntimeIndex) -> None:
    batch = build(
        index,
        [
            (
                span(
                    "checkoutservice", "hipstershop.CheckoutService/PlaceOrder", SpanKind.SERVER, 1
                ),
                {},
            ),
            (
                span(
                    "checkoutservice",
                    "hipstershop.CheckoutService/GetUserCart",
                    SpanKind.INTERNAL,
                    2,
                    1,
                ),
                {},
            ),
            (span("checkoutservice", "hipstershop.CartService/GetCart", SpanKind.CLIENT, 3, 2), {}),
            (span("cartservice", "hipstershop.CartService/GetCart", SpanKind.SERVER, 4, 3), {}),
            (span("frontend", "hipstershop.CurrencyService/Convert", SpanKind.CLIENT, 5), {}),
            (span("frontend", "hipstershop.Frontend/Recv.", SpanKind.INTERNAL, 6), {}),
            (span("cartservice", "grpc.health.v1.Health/Check", SpanKind.SERVER, 7), {}),
            ({"signal": Signal.LOG, "service": "cartservice", "span_id": 4, "start_ns": 5}, {}),
        ],
    )
    c = Correlator(index)
    got = results(c, batch)
    ok = CorrelationStatus.OK
    assert got[0] == ("checkout:flow:PlaceOrder", "deterministic", 1.0, ("bind.span_name",), ok)
    assert got[1] == ("checkout:flow:PlaceOrder", "heuristic", 0.8, ("graph.parent",), ok)
    assert got[2] == ("cart:flow:GetCart", "deterministic", 0.95, ("bind.span_name.peer",), ok)
    assert got[3] == ("cart:flow:GetCart", "deterministic", 1.0, ("bind.span_name",), ok)
    assert got[4] == ("currency:flow:Convert", "deterministic", 0.95, ("bind.rpc.from_name",), ok)
    assert got[5][0] == "" and got[5][4] == CorrelationStatus.FAILED
    assert got[6] == ("", "none", 1.0, ("ignore",), ok)
    assert got[7][:4] == ("cart:flow:GetCart", "heuristic", 0.98, ("join.span",))


def test_log_joins_span_from_an_earlier_batch(index: RuntimeIndex) -> None:
    c = Correlator(index)
    c.correlate(
        build(
            index,
            [(span("cartservice", "hipstershop.CartService/AddItem", SpanKind.SERVER, 9), {})],
        )
    )
    later = build(index, [({"signal": Signal.LOG, "service": "cartservice", "span_id": 9}, {})])
    assert results(c, later)[0][:4] == ("cart:flow:AddItem", "heuristic", 0.98, ("join.span",))


def test_explicit_sea_attributes(index: RuntimeIndex) -> None:
    batch = build(
        index,
        [
            (
                span("anything", "whatever", SpanKind.SERVER, 1),
                {"sea.spec_node": "payment:flow:Charge"},
            ),
            (
                span("anything", "whatever", SpanKind.SERVER, 2),
                {"sea.flow": "Charge", "sea.context": "payment"},
            ),
            (span("anything", "whatever", SpanKind.SERVER, 3), {"sea.flow": "Nope"}),
            (span("anything", "whatever", SpanKind.SERVER, 4), {"sea.spec_node": "x:flow:Y"}),
        ],
    )
    c = Correlator(index)
    cols = c.correlate(batch)
    got = results(c, batch)
    assert got[0][:4] == ("payment:flow:Charge", "deterministic", 1.0, ("sea.spec_node",))
    assert got[1][:4] == ("payment:flow:Charge", "deterministic", 1.0, ("sea.flow",))
    assert c.labels[int(cols.reason[2])] == "sea.flow 'Nope' names no flow of this spec"
    assert c.labels[int(cols.reason[3])] == "sea.spec_node 'x:flow:Y' is not a node of this spec"
    assert got[2][4] == got[3][4] == CorrelationStatus.FAILED


def test_shapes_are_resolved_once(index: RuntimeIndex) -> None:
    rows = [
        (span("cartservice", "hipstershop.CartService/GetCart", SpanKind.SERVER, i), {})
        for i in range(1, 500)
    ]
    c = Correlator(index)
    cols = c.correlate(build(index, rows))
    assert (cols.node == cols.node[0]).all() and c.labels[int(cols.node[0])] == "cart:flow:GetCart"
    assert c.cache.misses == 1 and len(c.cache) == 1
    c.correlate(build(index, rows))
    assert c.cache.hits == 1


def test_empty_batch(index: RuntimeIndex) -> None:
    cols = Correlator(index).correlate(BatchBuilder(index.attribute_keys).build())
    assert len(cols.node) == 0 and cols.node.dtype == np.int32
