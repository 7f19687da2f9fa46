"""The engine's drift detectors on a hand-built checkout trace (Online Boutique example spec)."""

from pathlib import Path

import pytest

from sidecar.engine import Engine
from sidecar.evidence.annotations import DRIFT_KINDS, SPEC_NODE_ID
from sidecar.evidence.batch import BatchBuilder, EvidenceBatch, Signal, SpanKind
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import index_from_disk

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "online-boutique" / "specs"
REQUIRED = {"app.user.id": "u1", "app.user.currency": "USD", "app.order.id": "o1",
            "app.order.items.count": 2}  # fmt: skip
CALL_ORDER = ["GetCart", "GetProduct", "Convert", "GetQuote", "Charge", "ShipOrder",
              "EmptyCart", "SendOrderConfirmation"]  # fmt: skip
SERVICE_OF = {"GetCart": "CartService", "GetProduct": "ProductCatalogService",
              "Convert": "CurrencyService", "GetQuote": "ShippingService",
              "Charge": "PaymentService", "ShipOrder": "ShippingService",
              "EmptyCart": "CartService", "SendOrderConfirmation": "EmailService",
              "GetAds": "AdService"}  # fmt: skip


@pytest.fixture(scope="module")
def index() -> RuntimeIndex:
    return index_from_disk(EXAMPLE)


class Trace:
    """Builds rows of one trace; span ids count up, start times follow insertion order."""

    def __init__(self, index: RuntimeIndex, trace: int = 7) -> None:
        self.b = BatchBuilder(index.attribute_keys)
        self.trace = trace
        self.next_id = 1

    def span(self, service: str, name: str, kind: SpanKind, parent: int = 0,
             attrs: dict[str, object] | None = None, **extra: int) -> int:  # fmt: skip
        sid = self.next_id
        self.next_id += 1
        code = self.b.pool.code
        row = {"signal": Signal.SPAN, "trace_hi": 1, "trace_lo": self.trace, "span_id": sid,
               "parent_id": parent, "start_ns": sid * 1000, "end_ns": sid * 1000 + 500,
               "kind": kind, "service": code(service), "name": code(name), **extra}  # fmt: skip
        self.b.add(row, attrs or {})
        return sid

    def call(self, parent: int, callee: str, attrs: dict[str, object]) -> None:
        name = f"hipstershop.{SERVICE_OF[callee]}/{callee}"
        client = self.span("checkoutservice", name, SpanKind.CLIENT, parent)
        self.span(SERVICE_OF[callee].lower(), name, SpanKind.SERVER, client, attrs)

    def build(self) -> EvidenceBatch:
        return self.b.build()


def kinds_of(engine: Engine, batch: EvidenceBatch) -> list[list[str]]:
    ann = engine.process(batch).annotations
    return [ann.attributes(i)[DRIFT_KINDS] for i in range(len(batch))]


def place_order(index: RuntimeIndex, calls: list[str], attrs: dict[str, object]) -> EvidenceBatch:
    t = Trace(index)
    root = t.span("checkoutservice", "hipstershop.CheckoutService/PlaceOrder", SpanKind.SERVER,
                  attrs=attrs)  # fmt: skip
    # Callees carry every attribute their own operations require.
    every = {k: "1" for op in index.operations.values() for k in op.required_attributes}
    for callee in calls:
        t.call(root, callee, every)
    return t.build()


def test_conforming_trace_has_no_drift(index: RuntimeIndex) -> None:
    engine = Engine(index)
    batch = place_order(index, CALL_ORDER, REQUIRED)
    assert kinds_of(engine, batch) == [[]] * len(batch)
    ann = engine.process(batch).annotations
    assert ann.attributes(0)[SPEC_NODE_ID] == "checkout:flow:PlaceOrder"
    assert ann.attributes(2)[SPEC_NODE_ID] == "cart:flow:GetCart"


def test_call_drift_is_reported_on_the_callers_span(index: RuntimeIndex) -> None:
    engine = Engine(index)
    calls = [c for c in CALL_ORDER if c != "Charge"] + ["GetAds"]
    calls[0], calls[1] = calls[1], calls[0]  # GetProduct before GetCart
    assert kinds_of(engine, place_order(index, calls, REQUIRED))[0] == [
        "unexpected_call",
        "missing_call",
        "flow_order",
    ]


def test_attribute_drift(index: RuntimeIndex) -> None:
    engine = Engine(index)
    attrs = {k: v for k, v in REQUIRED.items() if k != "app.order.id"}
    attrs["app.user.email"] = "someone@example.com"
    assert kinds_of(engine, place_order(index, CALL_ORDER, attrs))[0] == [
        "missing_attribute",
        "forbidden_attribute",
        "pii_exposure",
    ]


def test_item_facts(index: RuntimeIndex) -> None:
    engine = Engine(index)
    t = Trace(index)
    t.span("frontend", "hipstershop.Frontend/Recv.", SpanKind.SERVER)
    t.span("mystery", "Foo/Bar", SpanKind.SERVER)
    t.span("cartservice", "hipstershop.CartService/GetCart", SpanKind.SERVER, start_ns=9,
           end_ns=5)  # fmt: skip
    code = t.b.pool.code
    t.b.add({"signal": Signal.METRIC, "service": code("checkoutservice"),
             "name": code("app.orders.placed")}, {}, value=-3.0)  # fmt: skip
    t.b.add({"signal": Signal.METRIC, "service": code("checkoutservice"),
             "name": code("nezha.pod.cpu.usage_rate")}, {}, value=4.0)  # fmt: skip
    t.b.add({"signal": Signal.LOG, "service": code("checkoutservice"),
             "event_name": code("order.mystery")}, {})  # fmt: skip
    got = kinds_of(engine, t.build())
    assert got == [
        ["undeclared_operation"],
        ["unknown_service"],
        ["missing_attribute", "broken_telemetry"],
        ["metric_range"],
        ["undeclared_metric"],
        ["undeclared_event"],
    ]


def test_levels_and_classes(index: RuntimeIndex) -> None:
    engine = Engine(index)
    attrs = dict(REQUIRED, **{"app.user.email": "a@b.co"})
    ann = engine.process(place_order(index, CALL_ORDER, attrs)).annotations
    root = ann.attributes(0)
    assert root["behavior.drift_class"] == "semantic"
    assert root["behavior.drift_level"] == "high"
    assert root["behavior.drift_score"] == 1.0
    assert ann.attributes(1)["behavior.drift_level"] == "none"
    assert len(root["behavior.evidence_id"]) == 16
    assert root["behavior.spec_version"] == index.spec_hash


def test_pii_in_attributes_and_bodies(index: RuntimeIndex) -> None:
    engine = Engine(index)
    t = Trace(index)
    t.span("cartservice", "hipstershop.CartService/GetCart", SpanKind.SERVER,
           attrs={"app.user.id": "u", "note": "call me at +1 415 555 0100"})  # fmt: skip
    t.span("cartservice", "hipstershop.CartService/GetCart", SpanKind.SERVER,
           attrs={"app.user.id": "u", "app.order.id": "ord-4432801561520454"})  # fmt: skip
    code = t.b.pool.code
    t.b.add({"signal": Signal.LOG, "service": code("paymentservice"),
             "body": code("charging card 4432-8015-6152-0454")}, {})  # fmt: skip
    body = code("charge ok, transaction 4c9e4e4e-5b5f-4f4c-9d0e-7a2b1c3d4e5f")
    t.b.add({"signal": Signal.LOG, "service": code("paymentservice"), "body": body}, {})
    got = kinds_of(engine, t.build())
    assert got == [["pii_exposure"], [], ["pii_exposure"], []]
    assert engine.pii.scanned > 0
    scanned = engine.pii.scanned
    kinds_of(engine, t.build())
    assert engine.pii.scanned == scanned  # strings already seen are not scanned again


def test_calls_stay_with_the_server_span_not_its_callers_client_span(index: RuntimeIndex) -> None:
    """frontend client span -> recommendation server span -> catalog client span (real shape)."""
    engine = Engine(index)
    t = Trace(index)
    client = t.span("frontend", "hipstershop.RecommendationService/ListRecommendations",
                    SpanKind.CLIENT)  # fmt: skip
    server = t.span("recommendationservice",
                    "/hipstershop.RecommendationService/ListRecommendations", SpanKind.SERVER,
                    client, {"app.recommendation.count": 5})  # fmt: skip
    t.span("recommendationservice", "/hipstershop.ProductCatalogService/ListProducts",
           SpanKind.CLIENT, server)  # fmt: skip
    assert kinds_of(engine, t.build()) == [[], [], []]


def test_missing_call_explained_by_lost_context_is_benign(index: RuntimeIndex) -> None:
    """The required callee ran in the same trace but its span lost its parent link."""
    engine = Engine(index)
    every = {k: "1" for op in index.operations.values() for k in op.required_attributes}
    t = Trace(index)
    root = t.span("checkoutservice", "hipstershop.CheckoutService/PlaceOrder", SpanKind.SERVER,
                  attrs=REQUIRED)  # fmt: skip
    for callee in CALL_ORDER:
        if callee == "Charge":  # payment ran, but its parent id points at a span never seen
            t.span("paymentservice", "hipstershop.PaymentService/Charge", SpanKind.SERVER, 999,
                   every)  # fmt: skip
        else:
            t.call(root, callee, every)
    ann = engine.process(t.build()).annotations
    root_attrs = ann.attributes(0)
    assert root_attrs["behavior.drift_kinds"] == ["missing_call"]
    assert root_attrs["behavior.drift_class"] == "benign"
    assert root_attrs["behavior.drift_level"] == "low"


def test_missing_call_without_a_trace_of_the_callee_stays_semantic(index: RuntimeIndex) -> None:
    engine = Engine(index)
    ann = engine.process(place_order(index, [c for c in CALL_ORDER if c != "Charge"],
                                     REQUIRED)).annotations  # fmt: skip
    assert ann.attributes(0)["behavior.drift_class"] == "semantic"
    assert ann.attributes(0)["behavior.drift_level"] == "high"
