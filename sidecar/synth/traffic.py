"""Request traffic: the spans and logs of one user request running through the system model.

Normal traffic: a root SERVER span per request (HTTP, in ``web-gateway``); a CLIENT span plus
the callee's SERVER span for every gRPC call; a PRODUCER span and an asynchronous CONSUMER span
for the order-placed message; INTERNAL and database (CLIENT with ``db.system``) spans inside
operations; log-normal durations (own time plus children) well inside the budgets; errors at a
twentieth of each error budget that never abort the caller; logs joined by trace/span id
(``event.name`` for declared events). Every execution's implementing span is kept in the run
state for the exemplars of :mod:`sidecar.synth.metric_series`.

Benign variation (drift is described in :mod:`sidecar.synth.drift_injection`), labelled in
``benign``; only traces without drift get it, and never on the rate-kind target operations:

- ``health_check`` (:mod:`sidecar.synth.offspec_traces`): probe spans matching the ignore
  rules (one-span traces, ``spec_node`` null).
- ``retry``: 0.6% of gRPC calls fail fast (UNAVAILABLE) and are repeated once, successfully;
  for callees with an error budget of 1% or more, 30% of failed attempts reach the callee
  (a failing SERVER span, counted in its error rate; still far below the budget). Labelled:
  both CLIENT spans, the failed SERVER span, the caller's implementing span and the caller's
  WARN log about the retry.
- ``latency_jitter``: an execution pauses 1.5-3x its own time, capped at 80% of its p95
  budget. Labelled: its implementing span.
- ``lost_context``: a callee's SERVER span has a parent id that is in no trace, or starts a new
  trace (its subtree follows it). Labelled: that span and the caller's implementing span.
- ``extra_attributes``: an implementing span carries 1-2 extra non-sensitive attributes.
- ``renamed``: a canary build names the implementing span differently (``PlaceOrderHandler``,
  ``POST /api/v2/checkout``), without rpc attributes or ``http.route``: only a heuristic can
  correlate it (``binding`` = heuristic, ``via`` = similarity).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sidecar.synth.drift_injection import (
    DEPRECATED_OPERATION,
    Injection,
    adjust_plan,
    bad_value,
    break_ids,
    pii_log_body,
    pii_value,
)
from sidecar.synth.instrumentation import (
    EXTRA_ATTRIBUTES,
    KAFKA_SCOPE,
    request_values,
    server_attributes,
    server_scope,
)
from sidecar.synth.labels import ItemLabel
from sidecar.synth.offspec_traces import undeclared_operation, unknown_service
from sidecar.synth.otlp_records import (
    CLIENT,
    CONSUMER,
    ERROR,
    INFO,
    INTERNAL,
    PRODUCER,
    SERVER,
    WARN,
    LogRecord,
    SpanRecord,
)
from sidecar.synth.run_state import MS, SIGMA, RunState, Unit
from sidecar.synth.system import Internal, Operation, Service

RENAME_P, EXTRA_P, JITTER_P, LOST_P, RETRY_P, INFO_LOG_P = 0.1, 0.05, 0.03, 0.012, 0.006, 0.3
WINDOW_ERROR_RATE = 0.35


@dataclass(slots=True)
class _Exec:
    """Per-request state: shared attribute values, the injection, and what was emitted."""

    values: dict[str, Any]
    injection: Injection | None
    unit: Unit
    applied: bool = False
    #: Spans to break once the trace is complete (so their callers' timing stays sane).
    broken: list[tuple[SpanRecord, str]] = field(default_factory=list)


class Traffic:
    """Runs requests against the system model, drawing from one run's state."""

    def __init__(self, state: RunState) -> None:
        self.state, self.model, self.rng = state, state.model, state.rng

    def request(self, root: str, start: int, injection: Injection | None) -> Unit:
        """One request entering at ``root`` (or the trace its injection puts instead)."""
        unit = Unit(start)
        ex = _Exec(request_values(self.rng), injection, unit)
        trace_id = self.state.new_id(128)
        if injection is not None and injection.kind == "undeclared_operation":
            undeclared_operation(self.state, injection, trace_id, start, unit)
        elif injection is not None and injection.kind == "unknown_service":
            unknown_service(self.state, injection, trace_id, start, unit)
        else:
            deprecated = injection is not None and injection.kind == "deprecated_operation"
            op = self.model.operations[DEPRECATED_OPERATION if deprecated else root]
            self._execute(op, trace_id, "", start, ex)  # the injection labels its span
        for span, form in ex.broken:
            ids = break_ids(form, span.trace_id, span.span_id, span.start, span.end)
            span.trace_id, span.span_id, span.start, span.end = ids
            span.label.trace_id, span.label.span_id = span.trace_id, span.span_id
        return unit

    # -- executions ----------------------------------------------------------------------

    def _execute(
        self, op: Operation, trace_id: str, parent: str, start: int, ex: _Exec
    ) -> SpanRecord:
        """One execution of ``op``: its implementing span, internal spans, calls and logs."""
        rng = self.rng
        svc = self.model.service(op.service)
        rate_kind = self.state.target_kind.get(op.flow_id)
        window = rate_kind if rate_kind and self.state.in_window(rate_kind, start) else ""
        benign_ok = ex.injection is None and op.flow_id not in self.state.rate_ops
        inj = ex.injection if ex.injection and ex.injection.op == op.flow_id else None
        if inj is not None and ex.applied:
            inj = None  # span-level drift goes on the first execution in the trace only
        ex.applied = ex.applied or inj is not None
        renamed = ""
        if benign_ok and op.renames and rng.random() < RENAME_P:
            k = rng.randrange(len(op.renames))
            renamed = op.renames[k]
            pod, version = f"{svc.name}-rc{k + 1}-7f5c9d8b6-qmxwz", f"{svc.version}-rc.{k + 1}"
            res = self.state.resource(svc.name, pod, version, svc.language)
        else:
            res = self.state.pod(svc)
        kind = CONSUMER if op.protocol == "messaging" else SERVER
        label = ItemLabel(
            "span", trace_id, "", "consumer" if kind == CONSUMER else "server",
            renamed or op.span_name or op.http, op.flow_id,
            *(("heuristic", "similarity") if renamed else ("deterministic", "binding")),
            benign=["renamed"] if renamed else [],
        )  # fmt: skip
        scope = svc.app_scope if renamed else server_scope(svc, op)
        span = self.state.span(label, res=res, scope=scope, parent=parent, kind=kind, start=start)
        ex.unit.spans.append(span)
        self.state.executions.setdefault(op.flow_id, []).append(span)
        if window:
            self.state.samples[window] += 1
            label.drift.append(window)
        own = op.self_ms * rng.lognormvariate(0, SIGMA) * (3.0 if window == "baseline_shift" else 1)
        broken = inj is not None and inj.kind == "broken_telemetry"
        t = start + int(own * 0.6 * MS)
        for item in () if broken else op.internal:
            t = self._internal(span, svc, item, t, ex) + int(rng.uniform(0.05, 0.3) * MS)
        t = self._calls(op, span, t, ex)
        post = own * 0.4
        if window == "latency_budget":
            post += op.budget.p95_ms * rng.lognormvariate(math.log(1.5), 0.2)
        t += int(post * MS)
        if benign_ok and rng.random() < JITTER_P:
            cap = 0.8 * op.budget.p95_ms - (t - start) / MS
            if cap >= 0.5 * own:
                t += int(min(own * rng.uniform(1.5, 3.0), cap) * MS)
                label.benign.append("latency_jitter")
        span.end = t
        p_err = WINDOW_ERROR_RATE if window == "error_budget" else op.budget.error_rate / 20
        if rng.random() < p_err:
            _fail(span, f"{op.name} failed: upstream deadline exceeded")
        span.attrs = server_attributes(op, renamed, ex.values, span.status)
        if benign_ok and rng.random() < EXTRA_P:
            span.attrs.update(rng.sample(EXTRA_ATTRIBUTES, rng.randint(1, 2)))
            label.benign.append("extra_attributes")
        if inj is not None:
            self._inject(inj, span, ex)
        if not broken:
            self._logs(op, span, ex)
        return span

    def _calls(self, op: Operation, caller: SpanRecord, t: int, ex: _Exec) -> int:
        """Run the plan's calls (one after the other unless ``parallel``); returns the time."""
        last_start = t
        for call in adjust_plan(op.plan, ex.injection, op.flow_id):
            if self.rng.random() >= call.probability:
                continue
            for _ in range(self.rng.randint(*call.repeat)):
                begin = last_start if call.parallel else t
                end = self._call(op, caller, self.model.operations[call.callee], begin, ex)
                t = max(t, end) + int(self.rng.uniform(0.1, 0.6) * MS)
                last_start = begin
        return t

    def _call(
        self, op: Operation, caller: SpanRecord, callee: Operation, start: int, ex: _Exec
    ) -> int:
        """A call from ``caller`` to ``callee``; returns when the caller has its answer."""
        rng = self.rng
        if callee.protocol == "messaging":
            return self._publish(caller, callee, start, ex)
        svc = self.model.service(op.service)
        # retries and lost context label the caller too: neither side may be a rate target
        benign_ok = ex.injection is None and not {op.flow_id, callee.flow_id} & self.state.rate_ops
        retry = benign_ok and rng.random() < RETRY_P
        if retry:
            start = self._failed_attempt(svc, caller, callee, start, ex)
        client = self._client(svc, caller, callee, start, ex)
        if retry:
            client.label.benign.append("retry")
        trace_id, parent = caller.trace_id, client.span_id
        lost = benign_ok and rng.random() < LOST_P
        if lost:
            trace_id, parent = (
                (trace_id, self.state.new_id(64))
                if rng.random() < 0.5
                else (self.state.new_id(128), "")
            )
            caller.label.benign.append("lost_context")
        arrive = start + int(rng.uniform(0.2, 1.2) * MS)
        server = self._execute(callee, trace_id, parent, arrive, ex)
        if lost:
            server.label.benign.append("lost_context")
        client.end = server.end + int(rng.uniform(0.2, 1.2) * MS)
        client.attrs["rpc.grpc.status_code"] = 13 if server.status else 0
        if server.status:
            _fail(client, "INTERNAL")
        client.label.drift.extend(k for k in server.label.drift if k in self.state.windows)
        return client.end

    def _publish(self, caller: SpanRecord, callee: Operation, start: int, ex: _Exec) -> int:
        """Publish the message ``callee`` consumes; the consumer runs later, asynchronously."""
        dest = callee.messaging
        label = ItemLabel(
            "span", caller.trace_id, "", "producer", f"{dest} publish", callee.flow_id,
            "deterministic", "binding",
        )  # fmt: skip
        prod = self.state.span(
            label, res=caller.res, scope=KAFKA_SCOPE, parent=caller.span_id, kind=PRODUCER,
            start=start,
        )  # fmt: skip
        prod.end = start + int(self.rng.uniform(0.8, 3) * MS)
        prod.attrs = {
            "messaging.system": "kafka", "messaging.destination.name": dest,
            "messaging.operation": "publish",
            "messaging.kafka.message.key": ex.values["app.order.id"],
        }  # fmt: skip
        ex.unit.spans.append(prod)
        later = prod.end + int(self.rng.uniform(5, 80) * MS)
        self._execute(callee, caller.trace_id, prod.span_id, later, ex)
        return prod.end

    def _client(
        self, svc: Service, caller: SpanRecord, callee: Operation, start: int, ex: _Exec
    ) -> SpanRecord:
        label = ItemLabel(
            "span", caller.trace_id, "", "client", callee.rpc, callee.flow_id, "deterministic",
            "binding",
        )  # fmt: skip
        span = self.state.span(
            label, res=caller.res, scope=svc.rpc_scope, parent=caller.span_id, kind=CLIENT,
            start=start,
        )  # fmt: skip
        rpc_service, method = callee.rpc.split("/")
        span.attrs = {
            "rpc.system": "grpc", "rpc.service": rpc_service, "rpc.method": method,
            "server.address": callee.service, "server.port": 50051,
        }  # fmt: skip
        ex.unit.spans.append(span)
        return span

    def _failed_attempt(
        self, svc: Service, caller: SpanRecord, callee: Operation, start: int, ex: _Exec
    ) -> int:
        """A first attempt that fails with UNAVAILABLE; returns when the retry starts."""
        rng = self.rng
        client = self._client(svc, caller, callee, start, ex)
        client.end = start + int(rng.uniform(1, 5) * MS)
        client.attrs["rpc.grpc.status_code"] = 14
        _fail(client, "UNAVAILABLE: connection reset by peer")
        client.label.benign.append("retry")
        caller.label.benign.append("retry")
        # only callees with a roomy error budget see the failing attempt arrive
        if callee.budget.error_rate >= 0.01 and rng.random() < 0.3:
            target = self.model.service(callee.service)
            label = ItemLabel(
                "span", caller.trace_id, "", "server", callee.span_name, callee.flow_id,
                "deterministic", "binding", benign=["retry"],
            )  # fmt: skip
            server = self.state.span(
                label, res=self.state.pod(target), scope=server_scope(target, callee),
                parent=client.span_id, kind=SERVER, start=start + int(0.3 * MS),
            )  # fmt: skip
            server.end = client.end - int(0.2 * MS)
            server.attrs = server_attributes(callee, "", ex.values, 2)
            _fail(server, "UNAVAILABLE: too many open connections")
            ex.unit.spans.append(server)
        body = f"retrying {callee.rpc} after UNAVAILABLE (attempt 2 of 3)"
        self._log(caller, WARN, body, {}, ex, benign=["retry"], at=client.end)
        return client.end + int(rng.uniform(10, 40) * MS)

    def _internal(self, parent: SpanRecord, svc: Service, item: Internal, t: int, ex: _Exec) -> int:
        spec = parent.label.spec_node
        label = ItemLabel(
            "span", parent.trace_id, "", "db" if item.db else "internal", item.name, spec,
            "heuristic" if spec else "none", "parent" if spec else None,
        )  # fmt: skip
        span = self.state.span(
            label, res=parent.res, scope=svc.db_scope if item.db else svc.app_scope,
            parent=parent.span_id, kind=CLIENT if item.db else INTERNAL, start=t,
        )  # fmt: skip
        span.end = t + int(item.ms * self.rng.lognormvariate(0, SIGMA) * MS)
        if item.db:
            span.attrs = {
                "db.system": item.db, "db.operation": item.name.split(" ")[0],
                "db.namespace": "bookshop",
            }  # fmt: skip
        ex.unit.spans.append(span)
        return span.end

    # -- drift and logs ------------------------------------------------------------------

    def _inject(self, inj: Injection, span: SpanRecord, ex: _Exec) -> None:
        """Apply a span-level injection to the implementing span (or log next to it)."""
        rng, v = self.rng, inj.variant
        target = span.label
        if inj.kind == "missing_attribute":
            span.attrs.pop(v[0], None)
        elif inj.kind == "forbidden_attribute":
            span.attrs[v[0]] = v[1]
        elif inj.kind == "policy_violation":
            span.attrs[v[1]] = bad_value(v[2], span.attrs.get(v[1]), rng)
        elif inj.kind == "pii_exposure" and v[0] == "span":
            span.attrs[v[1]] = pii_value(v[2], rng)
        elif inj.kind == "pii_exposure":
            target = self._log(span, WARN, pii_log_body(v[2], rng), {}, ex).label
        elif inj.kind == "undeclared_event":
            target = self._log(span, INFO, v[1], {"event.name": v[0]}, ex).label
        elif inj.kind == "broken_telemetry":
            ex.broken.append((span, v[0]))
        target.drift.append(inj.kind)
        target.detail = inj.detail

    def _logs(self, op: Operation, span: SpanRecord, ex: _Exec) -> None:
        values = ex.values
        for event in op.events:
            name = next(e.log_event for e in self.model.events if e.node_id == event)
            body = f"{name} order={values['app.order.id']} user={values['app.user.id']}"
            self._log(span, INFO, body, {"event.name": name}, ex, bound=event)
        if op.log_event:
            body = f"shipment {values['app.shipment.id']} created"
            self._log(span, INFO, body, {"event.name": op.log_event}, ex, bound=op.flow_id)
        if self.rng.random() < INFO_LOG_P:
            took = (span.end - span.start) / MS
            self._log(span, INFO, f"{op.name} handled in {took:.1f} ms", {}, ex)
        if span.status:
            self._log(span, ERROR, span.message, {"exception.type": "DeadlineExceeded"}, ex)

    def _log(
        self,
        span: SpanRecord,
        severity: int,
        body: str,
        attrs: dict[str, Any],
        ex: _Exec,
        *,
        bound: str | None = None,
        benign: list[str] | None = None,
        at: int = 0,
    ) -> LogRecord:
        """A log record in ``span`` (near its end unless ``at``); ``bound``: its event's node."""
        node = bound or span.label.spec_node
        binding, via = ("deterministic", "binding") if bound else (span.label.binding, "span")
        label = ItemLabel(
            "log", span.trace_id, span.span_id, "log", str(attrs.get("event.name", "")), node,
            binding if node else "none", via if node else None, benign=list(benign or []),
        )  # fmt: skip
        when = at or max(span.start, span.end - int(self.rng.uniform(0.1, 1.0) * MS))
        scope = self.model.service(self.state.res_service[span.res]).app_scope
        log = LogRecord(span.res, scope, when, severity, body, attrs, label)
        ex.unit.logs.append(log)
        return log


def _fail(span: SpanRecord, message: str) -> None:
    span.status, span.message = 2, message
