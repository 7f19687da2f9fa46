"""The synthetic bookshop: the system the labelled telemetry comes from.

Eight services in six bounded contexts (storefront, catalog, basket, ordering, payments,
fulfilment) and 26 operations. :func:`bookshop` describes it in memory (what the traffic
generator runs); :mod:`sidecar.synth.spec_writer` writes the same description as a spec tree,
so the engine under test reads the system only through its spec.
"""

from __future__ import annotations

from typing import Any

from sidecar.synth.system import (
    Budget,
    Call,
    Context,
    Event,
    Internal,
    Metric,
    Operation,
    Policy,
    Service,
    SystemModel,
)

HEALTH_SPAN = "grpc.health.v1.Health/Check"
HEALTH_ROUTE = "/healthz"


def _b(p95: float, p99: float, err: float) -> Budget:
    return Budget(p95, p99, err)


def _http(flow: str, method_route: str, *, budget: Budget, self_ms: float, **kw: Any) -> Operation:
    return Operation(f"storefront:flow:{flow}", "web-gateway", kw.pop("kind", "query"), budget,
                     self_ms, http=method_route, **kw)  # fmt: skip


def _rpc(flow_id: str, service: str, rpc: str, *, budget: Budget, self_ms: float, **kw: Any
         ) -> Operation:  # fmt: skip
    # Python's gRPC instrumentation names server spans with a leading slash.
    name = "/" + rpc if kw.pop("slash", False) else rpc
    return Operation(flow_id, service, kw.pop("kind", "query"), budget, self_ms, span_name=name,
                     rpc=rpc, **kw)  # fmt: skip


_PLACE_ORDER_STEPS = (
    "basket:flow:GetBasket", "fulfilment:flow:QuoteShipping", "payments:flow:AuthorizePayment",
    "payments:flow:CapturePayment", "fulfilment:flow:CreateShipment", "basket:flow:ClearBasket",
)  # fmt: skip


def _operations() -> list[Operation]:
    sql, redis = "postgresql", "redis"
    return [
        _http("BrowseCatalog", "GET /api/books", budget=_b(500, 1000, 0.01), self_ms=55,
              weight=0.26, aliases=("browse catalog", "book list page"),
              plan=(Call("catalog:flow:ListBooks"),
                    Call("catalog:flow:GetRecommendations", probability=0.7, parallel=True)),
              requires_calls=("catalog:flow:ListBooks",), sets=("app.user.id",)),
        _http("ViewBook", "GET /api/books/{sku}", budget=_b(400, 800, 0.01), self_ms=35,
              weight=0.26, aliases=("view book", "book page", "book detail"),
              plan=(Call("catalog:flow:GetBook"),
                    Call("catalog:flow:GetRecommendations", probability=0.9)),
              requires_calls=("catalog:flow:GetBook",),
              steps=("catalog:flow:GetBook", "catalog:flow:GetRecommendations"),
              required=("app.book.sku",)),
        _http("SearchCatalog", "GET /api/search", budget=_b(400, 900, 0.01), self_ms=25,
              weight=0.11, aliases=("search page", "search catalog"),
              plan=(Call("catalog:flow:SearchBooks"),),
              requires_calls=("catalog:flow:SearchBooks",),
              sets=("app.search.query",)),
        _http("AddToBasket", "POST /api/basket/items", kind="command", budget=_b(400, 800, 0.01),
              self_ms=20, weight=0.11, aliases=("add to basket", "add to cart"),
              plan=(Call("catalog:flow:GetBook"), Call("basket:flow:AddItem")),
              requires_calls=("basket:flow:AddItem",),
              steps=("catalog:flow:GetBook", "basket:flow:AddItem"),
              required=("app.user.id", "app.book.sku"),
              renames=("POST /api/v2/basket/items", "AddToBasketHandler", "add_to_basket")),
        _http("ViewBasket", "GET /api/basket", budget=_b(500, 1000, 0.01), self_ms=30,
              weight=0.09, aliases=("view basket", "basket page", "cart page"),
              plan=(Call("basket:flow:GetBasket"), Call("catalog:flow:GetBook", repeat=(0, 3)),
                    Call("fulfilment:flow:QuoteShipping", probability=0.8)),
              requires_calls=("basket:flow:GetBasket",),
              steps=("basket:flow:GetBasket", "fulfilment:flow:QuoteShipping"),
              required=("app.user.id",)),
        _http("Checkout", "POST /api/checkout", kind="command", budget=_b(1500, 3000, 0.01),
              self_ms=25, weight=0.09, aliases=("checkout", "check out", "buy now"),
              plan=(Call("ordering:flow:PlaceOrder"),),
              requires_calls=("ordering:flow:PlaceOrder",),
              required=("app.user.id",),
              forbidden=("app.user.email", "app.card.number", "app.debug.feature_overrides"),
              renames=("POST /api/v2/checkout", "CheckoutController.submit")),
        _http("TrackOrder", "GET /api/orders/{order_id}", budget=_b(400, 800, 0.01),
              self_ms=20, weight=0.05, aliases=("track order", "order status page"),
              plan=(Call("ordering:flow:GetOrder"), Call("fulfilment:flow:GetShipmentStatus")),
              requires_calls=("ordering:flow:GetOrder",),
              steps=("ordering:flow:GetOrder", "fulfilment:flow:GetShipmentStatus"),
              required=("app.order.id",)),
        _http("RequestCancellation", "POST /api/orders/{order_id}/cancel", kind="command",
              budget=_b(800, 1500, 0.01), self_ms=20, weight=0.03,
              aliases=("cancel order request", "request cancellation"),
              plan=(Call("ordering:flow:CancelOrder"),),
              requires_calls=("ordering:flow:CancelOrder",), required=("app.order.id",)),
        _http("LegacyOrderStatus", "GET /api/orders/{order_id}/status",
              budget=_b(400, 800, 0.01), self_ms=20, aliases=("legacy order status",),
              plan=(Call("ordering:flow:GetOrder"),), required=("app.order.id",),
              deprecated="replaced by GET /api/orders/{order_id} (TrackOrder)"),
        # catalog (SEA flows; two services)
        _rpc("catalog:flow:ListBooks", "catalog-svc",
             "bookshop.catalog.v1.CatalogService/ListBooks",
             budget=_b(150, 300, 0.005), self_ms=6, aliases=("list books", "book listing"),
             required=("app.books.count",),
             internal=(Internal("SELECT bookshop.books", 5, sql),)),
        _rpc("catalog:flow:GetBook", "catalog-svc", "bookshop.catalog.v1.CatalogService/GetBook",
             budget=_b(80, 160, 0.005), self_ms=3, aliases=("get book", "book lookup"),
             required=("app.book.sku",), internal=(Internal("SELECT bookshop.books", 2, sql),)),
        _rpc("catalog:flow:GetRecommendations", "catalog-svc",
             "bookshop.catalog.v1.RecommendationService/GetRecommendations",
             budget=_b(200, 400, 0.05), self_ms=12, aliases=("recommendations", "similar books"),
             plan=(Call("catalog:flow:ListBooks", probability=0.4),),
             sets=("app.recommendation.count",)),
        _rpc("catalog:flow:SearchBooks", "search-svc", "bookshop.search.v1.SearchService/Search",
             budget=_b(200, 400, 0.01), self_ms=8, aliases=("search books", "find books"),
             slash=True, sets=("app.search.results",), policies=("catalog:policy:bounded_results",),
             internal=(Internal("search books-v3", 12, "elasticsearch"),),
             renames=("search_books", "BookSearchHandler.search")),
        # basket (manifest YAML + SDS YAML)
        _rpc("basket:flow:GetBasket", "basket-svc", "bookshop.basket.v1.BasketService/GetBasket",
             budget=_b(60, 120, 0.01), self_ms=2, aliases=("get basket", "basket contents"),
             required=("app.user.id",), sets=("app.basket.size",),
             internal=(Internal("HGETALL", 1, redis),), renames=("get_basket", "GetBasketQuery")),
        _rpc("basket:flow:AddItem", "basket-svc", "bookshop.basket.v1.BasketService/AddItem",
             kind="command", budget=_b(60, 120, 0.01), self_ms=3,
             aliases=("add item", "add to basket"),
             required=("app.user.id", "app.book.sku", "app.basket.quantity"),
             policies=("basket:policy:quantity_limit",), internal=(Internal("HSET", 1, redis),),
             events=("basket:event:ItemAdded",)),
        _rpc("basket:flow:ClearBasket", "basket-svc",
             "bookshop.basket.v1.BasketService/ClearBasket",
             kind="command", budget=_b(60, 120, 0.01), self_ms=2,
             aliases=("clear basket", "empty basket"), required=("app.user.id",),
             internal=(Internal("DEL", 1, redis),)),
        # ordering (manifest YAML; flows repeated in SEA with identical calls)
        _rpc("ordering:flow:PlaceOrder", "order-svc",
             "bookshop.ordering.v1.OrderService/PlaceOrder",
             kind="command", budget=_b(1200, 2500, 0.01), self_ms=15,
             aliases=("place order", "submit order", "create order"),
             plan=(Call("basket:flow:GetBasket"), Call("catalog:flow:GetBook", repeat=(1, 3)),
                   Call("fulfilment:flow:QuoteShipping"), Call("payments:flow:AuthorizePayment"),
                   Call("payments:flow:CapturePayment"), Call("fulfilment:flow:CreateShipment"),
                   Call("basket:flow:ClearBasket"), Call("fulfilment:flow:HandleOrderPlaced")),
             requires_calls=("basket:flow:GetBasket", "payments:flow:AuthorizePayment",
                             "fulfilment:flow:CreateShipment"),
             steps=_PLACE_ORDER_STEPS, policies=("ordering:policy:order_total_non_negative",),
             required=("app.user.id", "app.order.id", "app.order.total"),
             forbidden=("app.card.number", "app.user.email", "app.order.internal_margin"),
             sets=("app.order.items",),
             internal=(Internal("INSERT bookshop.orders", 4, sql),),
             events=("ordering:event:OrderPlaced",),
             renames=("PlaceOrderHandler", "place_order", "ordering.placeOrder",
                      "OrderService.placeOrder")),
        _rpc("ordering:flow:GetOrder", "order-svc", "bookshop.ordering.v1.OrderService/GetOrder",
             budget=_b(80, 160, 0.005), self_ms=3, aliases=("get order", "order lookup"),
             required=("app.order.id",), internal=(Internal("SELECT bookshop.orders", 2, sql),),
             renames=("get_order", "OrderQueryHandler.getOrder")),
        _rpc("ordering:flow:CancelOrder", "order-svc",
             "bookshop.ordering.v1.OrderService/CancelOrder", kind="command",
             budget=_b(600, 1200, 0.01), self_ms=8, aliases=("cancel order",),
             plan=(Call("payments:flow:RefundPayment"),),
             requires_calls=("payments:flow:RefundPayment",), required=("app.order.id",),
             internal=(Internal("UPDATE bookshop.orders", 3, sql),),
             events=("ordering:event:OrderCancelled",)),
        # payments (manifest JSON; spans also carry sea.* attributes)
        _rpc("payments:flow:AuthorizePayment", "payment-svc",
             "bookshop.payments.v1.PaymentService/Authorize", kind="command",
             budget=_b(400, 800, 0.01), self_ms=60, aliases=("authorize payment", "card auth"),
             required=("app.order.id", "app.payment.amount", "app.payment.currency"),
             forbidden=("app.card.number", "app.card.cvv", "app.payment.processor_debug"),
             sets=("app.payment.method",),
             policies=("payments:policy:amount_non_negative", "payments:policy:supported_currency"),
             renames=("AuthorizePaymentCommand", "payments.authorize", "authorize_payment")),
        _rpc("payments:flow:CapturePayment", "payment-svc",
             "bookshop.payments.v1.PaymentService/Capture", kind="command",
             budget=_b(300, 600, 0.01), self_ms=35, aliases=("capture payment",),
             required=("app.order.id", "app.payment.amount")),
        _rpc("payments:flow:RefundPayment", "payment-svc",
             "bookshop.payments.v1.PaymentService/Refund", kind="command",
             budget=_b(400, 800, 0.01), self_ms=45, aliases=("refund payment", "refund"),
             required=("app.order.id", "app.payment.amount"),
             policies=("payments:policy:refund_positive",)),
        # fulfilment (SEA flows with two services; manifest JSON for the rest)
        _rpc("fulfilment:flow:QuoteShipping", "shipping-svc",
             "bookshop.fulfilment.v1.ShippingService/Quote", budget=_b(100, 200, 0.01),
             self_ms=7, aliases=("shipping quote", "quote shipping"),
             required=("app.shipping.country",)),
        _rpc("fulfilment:flow:CreateShipment", "shipping-svc",
             "bookshop.fulfilment.v1.ShippingService/CreateShipment", kind="command",
             budget=_b(200, 400, 0.01), self_ms=14, aliases=("create shipment", "ship order"),
             log_event="shipment.created", required=("app.order.id",),
             sets=("app.shipment.id", "app.shipping.country"),
             internal=(Internal("INSERT bookshop.shipments", 3, sql),),
             renames=("create_shipment", "ShipmentService.create", "CreateShipmentHandler")),
        _rpc("fulfilment:flow:GetShipmentStatus", "shipping-svc",
             "bookshop.fulfilment.v1.ShippingService/GetStatus", budget=_b(100, 200, 0.01),
             self_ms=4, aliases=("shipment status", "tracking status"),
             required=("app.order.id",), sets=("app.shipment.id",)),
        Operation("fulfilment:flow:HandleOrderPlaced", "notify-svc", "event-handler",
                  _b(800, 1500, 0.01), 20, span_name="bookshop.orders.placed process",
                  messaging="bookshop.orders.placed",
                  aliases=("order placed handler", "send order confirmation"),
                  required=("app.order.id",), sets=("app.notification.channel",),
                  internal=(Internal("render confirmation email", 15),),
                  events=("fulfilment:event:ConfirmationSent",)),
    ]  # fmt: skip


def _services() -> tuple[Service, ...]:
    otelgrpc = "go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
    rows = (
        ("web-gateway", "storefront", "nodejs", "@opentelemetry/instrumentation-grpc", "",
         "4.2.0", ("web-gateway-6b7f9d5c8-qhzrx", "web-gateway-6b7f9d5c8-wvkmt")),
        ("catalog-svc", "catalog", "java", "io.opentelemetry.grpc-1.6", "io.opentelemetry.jdbc",
         "2.8.1", ("catalog-svc-5d8c7b9f4-jxnpl", "catalog-svc-5d8c7b9f4-tfrzb")),
        ("search-svc", "catalog", "python", "opentelemetry.instrumentation.grpc",
         "opentelemetry.instrumentation.elasticsearch", "1.4.0", ("search-svc-7c9d6f5b8-mkqsw",)),
        ("basket-svc", "basket", "dotnet", "OpenTelemetry.Instrumentation.GrpcCore",
         "OpenTelemetry.Instrumentation.StackExchangeRedis", "3.1.2",
         ("basket-svc-84f7c6d9b-lzvqh", "basket-svc-84f7c6d9b-rcxwd")),
        ("order-svc", "ordering", "go", otelgrpc, "github.com/XSAM/otelsql", "5.0.3",
         ("order-svc-9b5c8d7f6-hpwqn", "order-svc-9b5c8d7f6-zkdjv")),
        ("payment-svc", "payments", "java", "io.opentelemetry.grpc-1.6", "io.opentelemetry.jdbc",
         "2.2.0", ("payment-svc-6f9b8c5d7-sxqmr",)),
        ("shipping-svc", "fulfilment", "go", otelgrpc, "github.com/XSAM/otelsql", "1.9.4",
         ("shipping-svc-5c7d9b8f6-vnqtz",)),
        ("notify-svc", "fulfilment", "python", "opentelemetry.instrumentation.grpc", "",
         "0.7.1", ("notify-svc-7f6d5c9b8-gjxrw",)),
    )  # fmt: skip
    return tuple(
        Service(name, ctx, lang, rpc, f"bookshop.{ctx}", db, version, pods)
        for name, ctx, lang, rpc, db, version, pods in rows
    )


def bookshop() -> SystemModel:
    """The synthetic bookshop, in memory."""
    ops = _operations()
    services = _services()
    contexts = (
        Context("storefront", "SDS-301", "Storefront gateway", pii=("app.user.email",
                "app.user.phone")),
        Context("catalog", "SDS-302", "Catalog and search", flows_in="sea"),
        Context("basket", "SDS-303", "Basket", pii=("app.user.email",)),
        Context("ordering", "SDS-304", "Ordering", pii=("app.user.email", "app.card.number")),
        Context("payments", "SDS-305", "Payments", manifest_format="json",
                pii=("app.card.number", "app.card.cvv", "app.user.email")),
        Context("fulfilment", "SDS-306", "Fulfilment and notifications", flows_in="sea",
                manifest_format="json", pii=("app.user.email", "app.user.phone")),
    )  # fmt: skip
    events = (
        Event("basket:event:ItemAdded", "basket.item_added"),
        Event("ordering:event:OrderPlaced", "order.placed"),
        Event("ordering:event:OrderCancelled", "order.cancelled"),
        Event("fulfilment:event:ConfirmationSent", "notification.sent"),
    )
    metrics = (
        Metric("storefront:metric:app.sessions.active", "app.sessions.active", "web-gateway",
               "{session}", "gauge", (200, 900), 0, 5000),
        Metric("catalog:metric:app.catalog.books", "app.catalog.books", "catalog-svc", "{book}",
               "gauge", (12000, 12600), 1, 100000),
        Metric("basket:metric:app.basket.items", "app.basket.items", "basket-svc", "{item}",
               "gauge", (1, 12), 0, 50, "basket:flow:AddItem"),
        Metric("ordering:metric:app.orders.placed", "app.orders.placed", "order-svc", "{order}",
               "sum", (0, 0), 0, None, "ordering:flow:PlaceOrder"),
        Metric("ordering:metric:app.order.value", "app.order.value", "order-svc", "USD",
               "gauge", (8, 400), 0, 2000, "ordering:flow:PlaceOrder"),
        Metric("payments:metric:app.payments.authorized", "app.payments.authorized",
               "payment-svc", "{payment}", "sum", (0, 0), 0, None,
               "payments:flow:AuthorizePayment"),
        Metric("fulfilment:metric:app.shipments.created", "app.shipments.created",
               "shipping-svc", "{shipment}", "sum", (0, 0), 0, None,
               "fulfilment:flow:CreateShipment"),
        Metric("fulfilment:metric:app.notifications.queue_depth",
               "app.notifications.queue_depth", "notify-svc", "{message}", "gauge", (0, 40), 0,
               500),
    )  # fmt: skip
    policies = (
        Policy("catalog:policy:bounded_results", "catalog:flow:SearchBooks",
               "attributes['app.search.results'] <= 100"),
        Policy("basket:policy:quantity_limit", "basket:flow:AddItem",
               "attributes['app.basket.quantity'] >= 1 "
               "and attributes['app.basket.quantity'] <= 10"),
        Policy("ordering:policy:order_total_non_negative", "ordering:flow:PlaceOrder",
               "attributes['app.order.total'] >= 0"),
        Policy("payments:policy:amount_non_negative", "payments:flow:AuthorizePayment",
               "attributes['app.payment.amount'] >= 0"),
        Policy("payments:policy:supported_currency", "payments:flow:AuthorizePayment",
               "attributes['app.payment.currency'] in ['EUR', 'USD', 'GBP']"),
        Policy("payments:policy:refund_positive", "payments:flow:RefundPayment",
               "attributes['app.payment.amount'] > 0"),
    )  # fmt: skip
    return SystemModel(
        contexts, services, {op.flow_id: op for op in ops}, events, metrics, policies,
        {s.name: s for s in services},
    )  # fmt: skip
