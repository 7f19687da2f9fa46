"""What drift the generator injects, where, and how each case is labelled.

A :class:`DriftPlan` says which kinds to inject and how much; :meth:`DriftPlan.default`
injects every kind, :meth:`DriftPlan.none` gives the clean stretch a baseline is learned from.
Item kinds are injected into ``max(minimum, round(rate * traces))`` units (traces, or metric
data points), one injection per trace; traces with drift get no benign variation, so every
label is unambiguous. Rate kinds act on one operation over one window of the run.

Calls are observed as a CLIENT (or PRODUCER) span in the caller's service carrying the
callee's binding, normally with the callee's SERVER (CONSUMER) span as its child. The
*implementing span* of an execution is its SERVER (CONSUMER) span. Injections:

- ``undeclared_operation``: a one-span trace: a SERVER span in a known service whose name and
  rpc/http attributes are no binding and resemble no operation (``GET /api/admin/export``,
  ``CatalogService/BulkImport`` ...). Labelled: that span (``spec_node`` null).
- ``deprecated_operation``: a request to ``storefront:flow:LegacyOrderStatus`` (deprecated in
  the spec; never called in clean data). Labelled: its SERVER span; its call to GetOrder is
  clean.
- ``unknown_service``: a trace of a service no context lists (``loyalty-svc``,
  ``giftcard-svc``): SERVER span, a db span and a log record. Labelled: all of them (and only
  ``unknown_service``, not ``undeclared_operation``).
- ``unexpected_call``: an execution makes one extra call to a declared operation outside its
  ``calls`` (PlaceOrder -> SearchBooks ...). Labelled: the CALLER's implementing span; the
  extra client/server spans are clean instances of the callee.
- ``missing_call``: an execution skips a callee in its ``requires_calls`` (PlaceOrder without
  AuthorizePayment/CapturePayment ...). Labelled: the caller's implementing span. Base-rate
  errors never abort an execution, so no clean trace lacks a required call.
- ``flow_order``: two callees of ``steps`` run in the wrong order (CreateShipment before
  AuthorizePayment ...). The order of calls is the start order of their client spans; calls
  run one after the other. Labelled: the caller's implementing span.
- ``missing_attribute``: a required attribute is absent from an implementing span. Labelled:
  that span.
- ``forbidden_attribute``: an implementing span carries a forbidden key whose value is not PII
  (``app.order.internal_margin`` ...). Labelled: that span.
- ``pii_exposure``: a value an enabled detector matches (email, Luhn-valid card number, bearer
  token, phone), or any value under a declared ``pii_attributes`` key, on a span attribute of an
  implementing span or in a log body. The key is never forbidden for that operation.
  Labelled: the item carrying the value.
- ``policy_violation``: an implementing span whose attributes make a governing policy's
  assertion false (negative amount, quantity 0 or > 10, unsupported currency, negative
  total). Labelled: that span.
- ``undeclared_event``: a log record of an execution with an ``event.name`` no spec declares.
  Labelled: the log record; its ``spec_node`` is the operation of its span.
- ``broken_telemetry``: a leaf SERVER span (no children, no logs) with end before start, an
  all-zero or empty trace id, or an all-zero or empty span id. Labelled: that span; its
  ``spec_node`` is still the operation its name binds to.
- ``metric_range``: a data point of a declared gauge outside its declared range. Labelled:
  that point.
- ``undeclared_metric``: every data point of metrics no spec declares (from the second half of
  the run on, no exemplars). Labelled: those points, ``spec_node`` null.
- ``latency_budget`` (rate): every execution of ``storefront:flow:ViewBook`` in the window is
  slowed well past its p95 budget.
- ``error_budget`` (rate): ``catalog:flow:GetRecommendations`` fails 35% of the time in the
  window (budget 5%); callers degrade gracefully (their CLIENT spans show the error, their
  implementing spans stay ok).
- ``baseline_shift`` (rate): ``storefront:flow:BrowseCatalog`` spends 3x its own time in the
  window (about 2x end to end), still inside its budget: only a baseline learned from clean
  data shows it.
  (Where a budget is breached the kind is ``latency_budget``, never also ``baseline_shift``.)

Rate kinds label every SPAN of the target operation (SERVER and the CLIENT spans calling it)
whose execution starts inside the window (an execution's start is its SERVER span's start),
plus one window truth. Target operations get no other drift and no benign variation. Budgets
hold for executions (implementing spans): outside the windows every operation's p95 stays
under half its p95 budget and its error count is not significantly above its error budget,
although a single error among few executions of a rarely called operation can exceed the
budget's share (a detector needs a minimum sample size and a significance test).
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sidecar.synth.system import Call

ITEM_KINDS = (
    "undeclared_operation", "deprecated_operation", "unknown_service", "unexpected_call",
    "missing_call", "flow_order", "missing_attribute", "forbidden_attribute", "pii_exposure",
    "policy_violation", "metric_range", "undeclared_metric", "undeclared_event",
    "broken_telemetry",
)  # fmt: skip
RATE_KINDS = ("latency_budget", "error_budget", "baseline_shift")
DRIFT_KINDS = (*ITEM_KINDS, *RATE_KINDS)
#: Kinds that replace a whole request trace.
TRACE_KINDS = ("undeclared_operation", "deprecated_operation", "unknown_service")
#: Kinds injected into data points rather than traces.
METRIC_KINDS = ("metric_range", "undeclared_metric")
BENIGN_VARIATIONS = (
    "health_check",
    "retry",
    "latency_jitter",
    "lost_context",
    "extra_attributes",
    "renamed",
)
DEFAULT_TARGETS = {
    "latency_budget": "storefront:flow:ViewBook",
    "error_budget": "catalog:flow:GetRecommendations",
    "baseline_shift": "storefront:flow:BrowseCatalog",
}
DEPRECATED_OPERATION = "storefront:flow:LegacyOrderStatus"


@dataclass(frozen=True, slots=True)
class DriftPlan:
    """Which drift kinds to inject, how much, and when."""

    #: Item kinds: injections per request trace (at least ``minimum`` when units allow).
    rates: Mapping[str, float] = field(default_factory=dict)
    #: Rate kinds: window as (start, end) fractions of the run.
    windows: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    targets: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_TARGETS))
    minimum: int = 24

    @classmethod
    def default(cls) -> DriftPlan:
        """Every kind: 1.2% of traces per item kind; three disjoint quarter-run windows."""
        return cls(
            rates=dict.fromkeys(ITEM_KINDS, 0.012),
            windows={
                "latency_budget": (0.08, 0.33),
                "error_budget": (0.38, 0.63),
                "baseline_shift": (0.70, 0.95),
            },
        )

    @classmethod
    def none(cls) -> DriftPlan:
        """No drift at all (the clean stretch for ``--learn-baseline``)."""
        return cls()

    def count(self, kind: str, traces: int) -> int:
        """How many units ``kind`` is injected into (0 when the plan leaves it out)."""
        rate = self.rates.get(kind, 0.0)
        return max(self.minimum, round(rate * traces)) if rate > 0 else 0


@dataclass(frozen=True, slots=True)
class Injection:
    """One item-kind injection into one trace: the kind, the target operation, the variant."""

    kind: str
    op: str
    variant: tuple[str, ...] = ()

    @property
    def detail(self) -> str:
        """A human note for the label."""
        return f"{self.kind}: {self.op} {' '.join(self.variant)}".strip()


# (caller, callee): an extra call outside ``calls``.
UNEXPECTED_CALLS = (
    ("ordering:flow:PlaceOrder", "catalog:flow:SearchBooks"),
    ("storefront:flow:TrackOrder", "payments:flow:CapturePayment"),
    ("storefront:flow:AddToBasket", "ordering:flow:GetOrder"),
    ("storefront:flow:SearchCatalog", "basket:flow:GetBasket"),
    ("ordering:flow:CancelOrder", "basket:flow:ClearBasket"),
)
# (caller, callees skipped): at least one is in ``requires_calls``.
MISSING_CALLS = (
    ("ordering:flow:PlaceOrder", "payments:flow:AuthorizePayment", "payments:flow:CapturePayment"),
    ("storefront:flow:AddToBasket", "basket:flow:AddItem"),
    ("storefront:flow:SearchCatalog", "catalog:flow:SearchBooks"),
    ("ordering:flow:CancelOrder", "payments:flow:RefundPayment"),
    ("storefront:flow:TrackOrder", "ordering:flow:GetOrder"),
)
# (caller, earlier step, later step): the later step runs first.
FLOW_ORDERS = (
    (
        "ordering:flow:PlaceOrder",
        "payments:flow:AuthorizePayment",
        "fulfilment:flow:CreateShipment",
    ),
    ("ordering:flow:PlaceOrder", "basket:flow:GetBasket", "fulfilment:flow:QuoteShipping"),
    ("storefront:flow:AddToBasket", "catalog:flow:GetBook", "basket:flow:AddItem"),
    ("storefront:flow:TrackOrder", "ordering:flow:GetOrder", "fulfilment:flow:GetShipmentStatus"),
)
# (operation, required attribute left out).
MISSING_ATTRIBUTES = (
    ("ordering:flow:PlaceOrder", "app.order.id"),
    ("basket:flow:AddItem", "app.basket.quantity"),
    ("payments:flow:AuthorizePayment", "app.payment.currency"),
    ("catalog:flow:GetBook", "app.book.sku"),
    ("fulfilment:flow:QuoteShipping", "app.shipping.country"),
)
# (operation, forbidden key, non-PII value).
FORBIDDEN_ATTRIBUTES = (
    ("ordering:flow:PlaceOrder", "app.order.internal_margin", "0.31"),
    ("payments:flow:AuthorizePayment", "app.payment.processor_debug", "acquirer=eu-west;route=b"),
    ("storefront:flow:Checkout", "app.debug.feature_overrides", "new-pricing,fast-ship"),
)
# (operation, policy, attribute, bad value kind).
POLICY_VIOLATIONS = (
    ("payments:flow:AuthorizePayment", "payments:policy:amount_non_negative",
     "app.payment.amount", "negative"),
    ("payments:flow:AuthorizePayment", "payments:policy:supported_currency",
     "app.payment.currency", "currency"),
    ("basket:flow:AddItem", "basket:policy:quantity_limit", "app.basket.quantity", "quantity"),
    ("ordering:flow:PlaceOrder", "ordering:policy:order_total_non_negative", "app.order.total",
     "negative"),
    ("payments:flow:RefundPayment", "payments:policy:refund_positive", "app.payment.amount",
     "zero"),
)  # fmt: skip
# (operation, where, key or "", detector): on a span attribute, or in a log body.
PII_EXPOSURES = (
    ("storefront:flow:AddToBasket", "span", "app.user.email", "email"),
    ("storefront:flow:ViewBasket", "span", "http.request.header.authorization", "bearer_token"),
    ("fulfilment:flow:QuoteShipping", "span", "app.shipping.contact", "phone"),
    ("payments:flow:CapturePayment", "span", "app.payment.reference", "credit_card"),
    ("fulfilment:flow:HandleOrderPlaced", "log", "", "email"),
    ("payments:flow:AuthorizePayment", "log", "", "credit_card"),
)
# (operation, undeclared event name, log body).
UNDECLARED_EVENTS = (
    ("ordering:flow:PlaceOrder", "order.fraud_review_requested", "order held for fraud review"),
    ("basket:flow:AddItem", "basket.item_merged", "merged duplicate basket line"),
    ("payments:flow:AuthorizePayment", "payment.challenge_required", "3-D Secure challenge"),
    ("fulfilment:flow:HandleOrderPlaced", "notification.deferred", "quiet hours, deferred"),
)
# Leaf SERVER operations whose spans may be broken, and the ways to break them.
BROKEN_OPERATIONS = (
    "catalog:flow:GetBook", "fulfilment:flow:QuoteShipping", "basket:flow:ClearBasket",
    "fulfilment:flow:GetShipmentStatus", "payments:flow:CapturePayment",
)  # fmt: skip
BROKEN_FORMS = ("end_before_start", "zero_trace_id", "empty_trace_id", "zero_span_id",
                "empty_span_id")  # fmt: skip
# (service, span name, protocol): operations no spec declares, in known services.
UNDECLARED_OPERATIONS = (
    ("web-gateway", "GET /api/admin/export", "http"),
    ("web-gateway", "POST /api/gift-cards/redeem", "http"),
    ("catalog-svc", "bookshop.catalog.v1.CatalogService/BulkImport", "grpc"),
    ("order-svc", "bookshop.ordering.v1.OrderService/RecalculateTaxes", "grpc"),
    ("shipping-svc", "bookshop.fulfilment.v1.ShippingService/PrintLabels", "grpc"),
)
# (service, rpc name, db statement): services no context lists.
UNKNOWN_SERVICES = (
    ("loyalty-svc", "bookshop.loyalty.v1.LoyaltyService/GetBalance", "SELECT loyalty.accounts"),
    ("giftcard-svc", "bookshop.giftcards.v1.GiftCardService/Redeem", "UPDATE giftcards.cards"),
)
# (service, metric name, kind, unit): metrics no spec declares.
UNDECLARED_METRICS = (
    ("basket-svc", "app.basket.abandoned", "sum", "{basket}"),
    ("search-svc", "app.search.cache.hit_ratio", "gauge", "1"),
    ("payment-svc", "app.payments.retries", "sum", "{retry}"),
)


def trace_variants(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """(target operation, variant) pairs of a per-trace item kind."""
    tables: dict[str, Callable[[], list[tuple[str, tuple[str, ...]]]]] = {
        "unexpected_call": lambda: [(c, (e,)) for c, e in UNEXPECTED_CALLS],
        "missing_call": lambda: [(c, tuple(rest)) for c, *rest in MISSING_CALLS],
        "flow_order": lambda: [(c, (a, b)) for c, a, b in FLOW_ORDERS],
        "missing_attribute": lambda: [(o, (k,)) for o, k in MISSING_ATTRIBUTES],
        "forbidden_attribute": lambda: [(o, (k, v)) for o, k, v in FORBIDDEN_ATTRIBUTES],
        "policy_violation": lambda: [(o, (p, k, v)) for o, p, k, v in POLICY_VIOLATIONS],
        "pii_exposure": lambda: [(o, (w, k, d)) for o, w, k, d in PII_EXPOSURES],
        "undeclared_event": lambda: [(o, (e, b)) for o, e, b in UNDECLARED_EVENTS],
        "broken_telemetry": lambda: [(o, (f,)) for o in BROKEN_OPERATIONS for f in BROKEN_FORMS],
        "undeclared_operation": lambda: [(s, (n, p)) for s, n, p in UNDECLARED_OPERATIONS],
        "unknown_service": lambda: [(s, (n, q)) for s, n, q in UNKNOWN_SERVICES],
        "deprecated_operation": lambda: [(DEPRECATED_OPERATION, ())],
    }
    return tables[kind]()


def adjust_plan(plan: tuple[Call, ...], injection: Injection | None, op: str) -> tuple[Call, ...]:
    """The calls an execution of ``op`` makes under a call-level injection."""
    if injection is None or injection.op != op:
        return plan
    calls = list(plan)
    if injection.kind == "unexpected_call":
        calls.insert(1, Call(injection.variant[0]))
    elif injection.kind == "missing_call":
        calls = [c for c in calls if c.callee not in injection.variant]
    elif injection.kind == "flow_order":
        first, later = injection.variant
        moved = next(c for c in calls if c.callee == later)
        calls.remove(moved)
        calls.insert(next(i for i, c in enumerate(calls) if c.callee == first), moved)
    return tuple(calls)


def bad_value(what: str, current: object, rng: random.Random) -> object:
    """A value that breaks a policy assertion."""
    if what == "negative":
        return -round(rng.uniform(1, 80), 2)
    if what == "zero":
        return 0.0
    if what == "currency":
        return rng.choice(["BTC", "XAU", "ZWL"])
    return rng.choice([0, rng.randint(11, 40)]) if what == "quantity" else current


def luhn_card(rng: random.Random) -> str:
    """A Luhn-valid 16-digit Visa-like number, grouped by four."""
    digits = [4] + [rng.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = d * 2 if i % 2 == 0 else d
        total += v - 9 if v > 9 else v
    digits.append((10 - total % 10) % 10)
    text = "".join(map(str, digits))
    return " ".join(text[i : i + 4] for i in range(0, 16, 4))


_FIRST = ("maria", "jan", "aiko", "omar", "lena", "tom", "sofia", "ravi")
_LAST = ("garcia", "novak", "tanaka", "haddad", "berg", "okafor", "rossi", "iyer")


def pii_value(detector: str, rng: random.Random) -> str:
    """A value that the named detector (and a reasonable human) recognises as PII."""
    if detector == "email":
        domain = rng.choice(["example.com", "example.org", "mail.example.net"])
        return f"{rng.choice(_FIRST)}.{rng.choice(_LAST)}@{domain}"
    if detector == "credit_card":
        return luhn_card(rng)
    if detector == "bearer_token":
        alphabet = string.ascii_letters + string.digits + "-_"
        parts = ["".join(rng.choice(alphabet) for _ in range(n)) for n in (24, 43)]
        return f"Bearer eyJhbGciOiJSUzI1NiJ9.{parts[0]}.{parts[1]}"
    prefix = rng.choice(["+44 20 7946 0", "+1 415 555 0", "+49 30 5557 0"])
    return prefix + "".join(str(rng.randint(0, 9)) for _ in range(3))


def pii_log_body(detector: str, rng: random.Random) -> str:
    """A log body leaking a PII value."""
    value = pii_value(detector, rng)
    if detector == "email":
        return f"order confirmation sent to {value}"
    return f"authorization declined for card {value}: insufficient funds"


def break_ids(form: str, trace_id: str, span_id: str, start: int, end: int
              ) -> tuple[str, str, int, int]:  # fmt: skip
    """Trace id, span id, start and end of a span broken in the named way (JSON stays valid)."""
    if form == "end_before_start":
        return trace_id, span_id, start, start - (end - start) - 1_000_000
    if form == "zero_trace_id":
        return "0" * 32, span_id, start, end
    if form == "empty_trace_id":
        return "", span_id, start, end
    if form == "zero_span_id":
        return trace_id, "0" * 16, start, end
    return trace_id, "", start, end
