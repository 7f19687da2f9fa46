"""Online Boutique-shaped OTLP for the collector tests and benchmark.

Service, span, event and metric names come from examples/online-boutique/specs/manifests, so
the sidecar sees known shapes (deterministic bindings). The same templates feed the Python
OTLP/gRPC requests of the end-to-end tests and tools/loadgen's ``--shapes`` file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import AGGREGATION_TEMPORALITY_CUMULATIVE
from opentelemetry.proto.trace.v1.trace_pb2 import Span

Scalar = str | int | float | bool


@dataclass(frozen=True)
class SpanShape:
    """One span of a trace template; ``parent`` indexes an earlier span (-1: root)."""

    service: str
    name: str
    kind: str  # internal | server | client
    parent: int
    attributes: Mapping[str, Scalar] = field(default_factory=dict)
    duration_us: int = 1000


def _rpc(service: str, method: str) -> dict[str, Scalar]:
    return {"rpc.system": "grpc", "rpc.service": f"hipstershop.{service}", "rpc.method": method}


def _calls(
    spans: list[SpanShape], caller: str, parent: int, calls: Sequence[tuple[str, str, str]]
) -> None:
    """Append a client span in ``caller`` and a server span in the callee for each call."""
    for callee, rpc_service, method in calls:
        name = f"hipstershop.{rpc_service}/{method}"
        spans.append(SpanShape(caller, name, "client", parent, _rpc(rpc_service, method), 1500))
        spans.append(
            SpanShape(callee, name, "server", len(spans) - 1, _rpc(rpc_service, method), 1000)
        )


def checkout_trace() -> list[SpanShape]:
    """PlaceOrder (checkout context) with its eight declared calls, in the declared order."""
    attrs: dict[str, Scalar] = {
        "app.user.id": "u-42",
        "app.user.currency": "EUR",
        "app.order.id": "o-7",
        "app.order.items.count": 2,
        **_rpc("CheckoutService", "PlaceOrder"),
    }
    spans = [
        SpanShape(
            "checkoutservice", "hipstershop.CheckoutService/PlaceOrder", "server", -1, attrs, 9000
        )
    ]
    _calls(
        spans,
        "checkoutservice",
        0,
        [
            ("cartservice", "CartService", "GetCart"),
            ("productcatalogservice", "ProductCatalogService", "GetProduct"),
            ("currencyservice", "CurrencyService", "Convert"),
            ("shippingservice", "ShippingService", "GetQuote"),
            ("paymentservice", "PaymentService", "Charge"),
            ("shippingservice", "ShippingService", "ShipOrder"),
            ("cartservice", "CartService", "EmptyCart"),
            ("emailservice", "EmailService", "SendOrderConfirmation"),
        ],
    )
    return spans


def view_cart_trace() -> list[SpanShape]:
    """The storefront's GET /cart (an HTTP route binding) and its calls."""
    http: dict[str, Scalar] = {
        "http.request.method": "GET",
        "http.route": "/cart",
        "url.path": "/cart",
        "http.response.status_code": 200,
    }
    spans = [SpanShape("frontend", "GET /cart", "server", -1, http, 4000)]
    _calls(
        spans,
        "frontend",
        0,
        [
            ("cartservice", "CartService", "GetCart"),
            ("currencyservice", "CurrencyService", "GetSupportedCurrencies"),
            ("productcatalogservice", "ProductCatalogService", "GetProduct"),
            ("shippingservice", "ShippingService", "GetQuote"),
            ("currencyservice", "CurrencyService", "Convert"),
        ],
    )
    return spans


def boutique_traces() -> list[list[SpanShape]]:
    """The trace templates the tests and the benchmark send."""
    return [checkout_trace(), view_cart_trace()]


def loadgen_shapes(templates: Sequence[Sequence[SpanShape]]) -> dict[str, Any]:
    """The templates in tools/loadgen's --shapes JSON format."""
    return {
        "traces": [
            {
                "spans": [
                    {
                        "service": s.service,
                        "name": s.name,
                        "kind": s.kind,
                        "parent": s.parent,
                        "duration_us": s.duration_us,
                        "attributes": dict(s.attributes),
                    }
                    for s in t
                ]
            }
            for t in templates
        ]
    }


_KINDS = {
    "internal": Span.SPAN_KIND_INTERNAL,
    "server": Span.SPAN_KIND_SERVER,
    "client": Span.SPAN_KIND_CLIENT,
}


def any_value(value: Scalar) -> AnyValue:
    """A Python scalar as an OTLP AnyValue."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    return AnyValue(string_value=value)


def key_values(attrs: Mapping[str, Scalar]) -> list[KeyValue]:
    """A mapping as OTLP attributes."""
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def trace_id(n: int, run: int = 0xB0B) -> bytes:
    """A 16-byte trace id for trace number ``n`` of a run."""
    return run.to_bytes(8, "big") + n.to_bytes(8, "big")


def span_id(tid: bytes, index: int) -> bytes:
    """The id of span ``index`` of a trace: the same in every request that carries it."""
    return (((int.from_bytes(tid[8:], "big") << 8) | (index + 1)) & (2**64 - 1)).to_bytes(8, "big")


def traces_request(
    traces: Sequence[tuple[bytes, Sequence[SpanShape]]], now_ns: int, part: slice = slice(None)
) -> ExportTraceServiceRequest:
    """A request with the (trace id, template) pairs, one ResourceSpans per service.

    ``part`` picks which spans of each template go into this request, so one trace can be
    sent over several requests.
    """
    req = ExportTraceServiceRequest()
    scopes: dict[str, Any] = {}
    for tid, shapes in traces:
        for i in range(len(shapes))[part]:
            shape = shapes[i]
            scope = scopes.get(shape.service)
            if scope is None:
                rs = req.resource_spans.add()
                rs.resource.attributes.extend(key_values({"service.name": shape.service}))
                scope = scopes[shape.service] = rs.scope_spans.add()
                scope.scope.name = "boutique-test"
            start = now_ns + i * 50_000
            span = scope.spans.add(
                trace_id=tid,
                span_id=span_id(tid, i),
                name=shape.name,
                kind=_KINDS[shape.kind],
                start_time_unix_nano=start,
                end_time_unix_nano=start + shape.duration_us * 1000,
            )
            if shape.parent >= 0:
                span.parent_span_id = span_id(tid, shape.parent)
            span.attributes.extend(key_values(shape.attributes))
    return req


def iter_span_ids(req: ExportTraceServiceRequest) -> Iterator[tuple[bytes, bytes]]:
    """(trace id, span id) of every span in a request."""
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                yield sp.trace_id, sp.span_id


def logs_request(tid: bytes, sid: bytes, now_ns: int) -> ExportLogsServiceRequest:
    """checkoutservice's order.placed event (a declared event) joined to a span, and a plain log."""
    req = ExportLogsServiceRequest()
    rl = req.resource_logs.add()
    rl.resource.attributes.extend(key_values({"service.name": "checkoutservice"}))
    sl = rl.scope_logs.add()
    sl.scope.name = "boutique-test"
    event = sl.log_records.add(
        time_unix_nano=now_ns,
        severity_number=9,
        severity_text="INFO",
        trace_id=tid,
        span_id=sid,
        event_name="order.placed",
    )
    event.body.string_value = "order placed"
    event.attributes.extend(key_values({"event.name": "order.placed", "app.order.id": "o-7"}))
    plain = sl.log_records.add(
        time_unix_nano=now_ns, severity_number=9, severity_text="INFO", trace_id=tid, span_id=sid
    )
    plain.body.string_value = "payment went through"
    return req


def metrics_request(now_ns: int) -> ExportMetricsServiceRequest:
    """Declared metrics: checkout's app.orders.placed (sum) and app.order.total_usd (gauge)."""
    req = ExportMetricsServiceRequest()
    rm = req.resource_metrics.add()
    rm.resource.attributes.extend(key_values({"service.name": "checkoutservice"}))
    sm = rm.scope_metrics.add()
    sm.scope.name = "boutique-test"
    placed = sm.metrics.add(name="app.orders.placed", unit="{order}")
    placed.sum.is_monotonic = True
    placed.sum.aggregation_temporality = AGGREGATION_TEMPORALITY_CUMULATIVE
    dp = placed.sum.data_points.add(time_unix_nano=now_ns, as_int=12)
    dp.attributes.extend(key_values({"app.user.currency": "EUR"}))
    total = sm.metrics.add(name="app.order.total_usd", unit="USD")
    total.gauge.data_points.add(time_unix_nano=now_ns, as_double=123.5)
    return req
