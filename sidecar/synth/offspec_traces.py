"""Traces that are not requests of the spec: health probes, undeclared operations, unknown services.

Health probes are benign (``health_check``: they match the spec's ignore rules); the other two
replace a whole request trace when :mod:`sidecar.synth.drift_injection` plans
``undeclared_operation`` or ``unknown_service`` for it.
"""

from __future__ import annotations

from sidecar.synth.bookshop import HEALTH_ROUTE, HEALTH_SPAN
from sidecar.synth.drift_injection import Injection
from sidecar.synth.instrumentation import HTTP_SCOPE, random_letters, rpc_attributes
from sidecar.synth.labels import ItemLabel
from sidecar.synth.otlp_records import CLIENT, INFO, SERVER, LogRecord
from sidecar.synth.run_state import MS, SIGMA, RunState, Unit

HEALTH_PERIOD_NS = 30 * 10**9


def undeclared_operation(
    state: RunState, inj: Injection, trace_id: str, start: int, unit: Unit
) -> None:
    """A one-span request to an operation no spec declares, in a known service."""
    (name, protocol), svc = inj.variant, state.model.service(inj.op)
    label = ItemLabel(
        "span", trace_id, "", "server", name, None, "none", None,
        drift=["undeclared_operation"], detail=inj.detail,
    )  # fmt: skip
    span = state.span(
        label, res=state.pod(svc), scope=svc.rpc_scope if protocol == "grpc" else HTTP_SCOPE,
        parent="", kind=SERVER, start=start,
    )  # fmt: skip
    span.end = start + int(20 * state.rng.lognormvariate(0, SIGMA) * MS)
    if protocol == "http":
        method, route = name.split(" ", 1)
        span.attrs = {
            "http.request.method": method, "http.route": route, "url.path": route,
            "http.response.status_code": 200,
        }  # fmt: skip
    else:
        span.attrs = rpc_attributes(name)
    unit.spans.append(span)


def unknown_service(state: RunState, inj: Injection, trace_id: str, start: int, unit: Unit) -> None:
    """A request served by a service no context lists: SERVER span, db span, log."""
    service, (rpc, statement) = inj.op, inj.variant
    res = state.resource(service, f"{service}-6d8f7c5b9-kwzpt", "0.3.0", "java")

    def label(role: str, name: str) -> ItemLabel:
        return ItemLabel(
            "log" if role == "log" else "span", trace_id, "", role, name, None, "none", None,
            drift=["unknown_service"], detail=inj.detail,
        )  # fmt: skip

    server = state.span(
        label("server", rpc), res=res, scope="io.opentelemetry.grpc-1.6", parent="",
        kind=SERVER, start=start,
    )  # fmt: skip
    db = state.span(
        label("db", statement), res=res, scope="io.opentelemetry.jdbc",
        parent=server.span_id, kind=CLIENT, start=start + 2 * MS,
    )  # fmt: skip
    db.end = db.start + int(state.rng.uniform(2, 9) * MS)
    server.end = db.end + int(state.rng.uniform(3, 12) * MS)
    server.attrs = rpc_attributes(rpc)
    db.attrs = {"db.system": "postgresql", "db.operation": statement.split(" ")[0]}
    unit.spans += [server, db]
    log_label = label("log", "")
    log_label.span_id = server.span_id
    body = f"balance served for account acct_{random_letters(state.rng, 8)}"
    unit.logs.append(LogRecord(res, f"{service}.app", db.end, INFO, body, {}, log_label))


def health_probes(state: RunState) -> list[Unit]:
    """Health probes every 30 s per service, each its own one-span trace."""
    units = []
    for svc in state.model.services:
        http = svc.name == "web-gateway"
        name = f"GET {HEALTH_ROUTE}" if http else HEALTH_SPAN
        t = state.start + int(state.rng.uniform(0, HEALTH_PERIOD_NS))
        while t < state.end:
            label = ItemLabel(
                "span", state.new_id(128), "", "server", name, None, "none", "ignore",
                benign=["health_check"],
            )  # fmt: skip
            span = state.span(
                label, res=state.pod(svc), scope=HTTP_SCOPE if http else svc.rpc_scope,
                parent="", kind=SERVER, start=t,
            )  # fmt: skip
            span.end = t + int(state.rng.uniform(0.2, 2.0) * MS)
            span.attrs = (
                {"http.request.method": "GET", "http.route": HEALTH_ROUTE,
                 "url.path": HEALTH_ROUTE, "http.response.status_code": 200,
                 "user_agent.original": "kube-probe/1.29"}
                if http else rpc_attributes(HEALTH_SPAN)
            )  # fmt: skip
            units.append(Unit(t, [span]))
            t += HEALTH_PERIOD_NS + int(state.rng.uniform(-2, 2) * 1e9)
    return units
