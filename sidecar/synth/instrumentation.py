"""What the bookshop's instrumentation records: scopes, span attributes and request values.

Protocol attributes follow the OpenTelemetry semantic conventions (HTTP, RPC, messaging);
application attributes (``app.*``) take the values of one request, drawn once per trace.
"""

from __future__ import annotations

import random
import string
from typing import Any

from sidecar.synth.system import Operation, Service

HTTP_SCOPE = "@opentelemetry/instrumentation-http"
KAFKA_SCOPE = "github.com/segmentio/kafka-go/otel"
CONSUMER_SCOPE = "opentelemetry.instrumentation.kafka"
#: Non-sensitive attributes an implementing span may carry besides the spec'd ones.
EXTRA_ATTRIBUTES = (
    ("app.ab.bucket", "B"), ("app.cache.hit", True), ("app.locale", "de-DE"),
    ("app.client.platform", "ios"), ("app.feature.fast_search", False),
    ("app.request.priority", "normal"),
)  # fmt: skip
_QUERIES = ("dune", "sci-fi classics", "cookbooks", "tolkien", "graphic novels", "poetry")


def server_scope(svc: Service, op: Operation) -> str:
    """The instrumentation scope of ``op``'s implementing span in ``svc``."""
    if op.protocol == "messaging":
        return CONSUMER_SCOPE
    return HTTP_SCOPE if op.protocol == "http" else svc.rpc_scope


def rpc_attributes(full_method: str) -> dict[str, Any]:
    """Semantic-convention attributes of a successful gRPC span for ``service/method``."""
    rpc_service, method = full_method.split("/")
    return {
        "rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method,
        "rpc.grpc.status_code": 0,
    }  # fmt: skip


def server_attributes(
    op: Operation, renamed: str, values: dict[str, Any], status: int
) -> dict[str, Any]:
    """Attributes of an implementing span: protocol, ``sea.*`` (payments) and application."""
    attrs: dict[str, Any] = {}
    if op.protocol == "http":
        method, route = op.http.split(" ", 1)
        path = route.replace("{sku}", values["app.book.sku"])
        path = path.replace("{order_id}", values["app.order.id"])
        attrs["http.request.method"] = method
        if renamed:  # the canary serves the v2 API and its framework sets no route
            attrs["url.path"] = "/api/v2" + path.removeprefix("/api")
        else:
            attrs |= {"http.route": route, "url.path": path}
        attrs |= {
            "url.scheme": "https", "http.response.status_code": 500 if status else 200,
            "user_agent.original": values["ua"], "client.address": values["ip"],
        }  # fmt: skip
    elif op.protocol == "messaging":
        attrs |= {
            "messaging.system": "kafka", "messaging.destination.name": op.messaging,
            "messaging.operation": "process", "messaging.consumer.group.name": "notify",
        }  # fmt: skip
    elif not renamed:
        attrs |= rpc_attributes(op.rpc) | {"rpc.grpc.status_code": 13 if status else 0}
    if renamed and " " not in renamed:
        attrs["code.namespace"] = f"bookshop.{op.context}"
        attrs["code.function"] = renamed.rsplit(".", 1)[-1]
    if op.context == "payments" and not renamed:
        attrs |= {"sea.context": op.context, "sea.spec_node": op.flow_id}
    for key in (*op.required, *op.sets):
        attrs[key] = values[key]
    return attrs


def random_letters(rng: random.Random, n: int) -> str:
    """``n`` random lower-case letters."""
    return "".join(rng.choices(string.ascii_lowercase, k=n))


def request_values(rng: random.Random) -> dict[str, Any]:
    """Attribute values of one request (one shopper, one order); none of them looks like PII."""
    qty = rng.randint(1, 4)
    total = round(rng.uniform(6.99, 39.99) * qty + rng.choice([0, 3.95, 4.95, 7.5]), 2)
    return {
        "app.user.id": "usr_" + random_letters(rng, 8),
        "app.book.sku": f"BK-{rng.randint(10000, 99999)}",
        "app.basket.quantity": qty, "app.basket.size": rng.randint(1, 12),
        "app.order.id": "ord_" + random_letters(rng, 10), "app.order.total": total,
        "app.order.items": qty, "app.payment.amount": total,
        "app.payment.currency": rng.choice(["EUR", "EUR", "USD", "GBP"]),
        "app.payment.method": rng.choice(["card", "card", "paypal"]),
        "app.shipping.country": rng.choice(["DE", "FR", "GB", "NL", "US", "ES"]),
        "app.shipment.id": "shp_" + random_letters(rng, 10),
        "app.books.count": rng.randint(12, 48),
        "app.search.query": rng.choice(_QUERIES), "app.search.results": rng.randint(0, 60),
        "app.recommendation.count": rng.randint(3, 6),
        "app.notification.channel": rng.choice(["email", "push"]),
        "ua": rng.choice([
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1",
        ]),
        "ip": f"10.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(1, 99)}",
    }  # fmt: skip
