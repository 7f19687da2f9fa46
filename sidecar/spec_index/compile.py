"""Compiling a validated spec graph into the runtime index.

``compile_spec_tree`` is the one entry point the CLI, the sidecar and the benchmark use:
load → validate → compile. Compilation itself can find problems validation cannot see alone
(two flows bound to the same span name), and reports them in the same ``path:line`` form.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sidecar.spec.expr import ExpressionError, compile_assertion
from sidecar.spec.graph import SpecGraph
from sidecar.spec.loader import LoadedSpec, load_spec_tree
from sidecar.spec.model import Budget, Location, OperationSpec, Problem
from sidecar.spec.validate import validate_graph
from sidecar.spec_index.index import (
    ANY_SERVICE,
    Bindings,
    BudgetEntry,
    IgnoreEntry,
    MetricEntry,
    NodeEntry,
    OperationEntry,
    PolicyEntry,
    PrivacyEntry,
    RuntimeIndex,
)

#: Attribute keys the correlator always reads: the semantic conventions of the contract and
#: the standard OpenTelemetry keys that bindings match on.
BASE_ATTRIBUTE_KEYS = (
    "sea.context", "sea.domain", "sea.concept", "sea.regime_id", "sea.flow", "sea.policy",
    "sea.spec_node", "rpc.system", "rpc.service", "rpc.method", "http.route",
    "http.request.method", "http.method", "url.path", "messaging.destination.name",
    "messaging.operation", "event.name",
)  # fmt: skip

T = TypeVar("T")


@dataclass(slots=True)
class CompiledSpec:
    """The outcome of load → validate → compile for one spec root."""

    loaded: LoadedSpec
    problems: list[Problem]
    index: RuntimeIndex | None = None

    @property
    def ok(self) -> bool:
        """True when the tree is valid and an index was built."""
        return self.index is not None and not self.problems


def compile_spec_tree(root: Path) -> CompiledSpec:
    """Load, validate and compile a spec root; ``index`` is None when there are problems."""
    loaded = load_spec_tree(root)
    problems = validate_graph(loaded.graph)
    index, compile_problems = compile_index(loaded.graph, loaded.content_hash)
    problems = sorted(set(problems) | set(compile_problems))
    return CompiledSpec(loaded, problems, None if problems else index)


@dataclass(slots=True)
class _BindingTable:
    """Collects bindings and reports two different nodes bound to the same key."""

    problems: list[Problem]
    owners: dict[tuple[str, str, str], tuple[str, Location]] = field(default_factory=dict)

    def put(
        self, table: dict[str, str], kind: str, scope: str, key: str, *, target: str, loc: Location
    ) -> None:
        """Bind ``key`` (within ``scope``) to ``target`` unless another node already has it."""
        seen = self.owners.get((kind, scope, key))
        if seen is not None and seen[0] != target:
            where = f" on service '{scope}'" if scope else ""
            self.problems.append(Problem.at(
                loc, f"{kind} '{key}'{where} is bound to '{target}' here but to '{seen[0]}' "
                     f"at {seen[1]}; a binding must name one spec node",
            ))  # fmt: skip
            return
        self.owners[(kind, scope, key)] = (target, loc)
        table[key] = target


def compile_index(graph: SpecGraph, spec_hash: str) -> tuple[RuntimeIndex, list[Problem]]:
    """Build the runtime index from a validated graph; returns binding conflicts as problems.

    Entries are built with ``model_construct``: every value already has its declared type
    here, and re-validating thousands of entries would double the compile time. Payloads read
    back from the cache are fully validated by the codec.
    """
    problems: list[Problem] = []
    table = _BindingTable(problems)
    ctx_services: dict[str, list[str]] = defaultdict(list)
    for svc, (ctx, _) in sorted(graph.services.items()):
        ctx_services[ctx].append(svc)

    span: dict[str, dict[str, str]] = defaultdict(dict)
    http: dict[str, dict[str, str]] = defaultdict(dict)
    rpc: dict[str, str] = {}
    messaging: dict[str, str] = {}
    log_event: dict[str, str] = {}
    metric: dict[str, str] = {}
    operations: dict[str, OperationEntry] = {}
    for flow_id, ops in sorted(graph.operations.items()):
        entry = _merge_operation(flow_id, ops, ctx_services)
        operations[flow_id] = entry
        scopes = entry.services or (ANY_SERVICE,)
        for op in ops:
            at = op.loc_of("match")
            for b in op.bindings:
                for svc in scopes:
                    if b.span_name:
                        table.put(span[svc], "span_name", svc, b.span_name, target=flow_id, loc=at)
                    if b.http_route:
                        key = f"{b.http_method or '*'} {b.http_route}"
                        table.put(http[svc], "http", svc, key, target=flow_id, loc=at)
                if b.rpc_service and b.rpc_method:
                    key = f"{b.rpc_service}/{b.rpc_method}"
                    table.put(rpc, "rpc", "", key, target=flow_id, loc=at)
                if b.messaging_destination:
                    table.put(
                        messaging,
                        "messaging destination",
                        "",
                        b.messaging_destination,
                        target=flow_id,
                        loc=at,
                    )
                if b.log_event:
                    table.put(log_event, "log event", "", b.log_event, target=flow_id, loc=at)
                if b.metric_name:
                    table.put(metric, "metric", "", b.metric_name, target=flow_id, loc=at)
    for ev in graph.events:
        if ev.log_event:
            table.put(log_event, "log event", "", ev.log_event, target=ev.node_id, loc=ev.loc)
        if ev.topic:
            table.put(
                messaging, "messaging destination", "", ev.topic, target=ev.node_id, loc=ev.loc
            )
    metrics: dict[str, MetricEntry] = {}
    for m in graph.metrics:
        table.put(metric, "metric", "", m.name, target=m.node_id, loc=m.loc)
        metrics[m.name] = MetricEntry.model_construct(
            node_id=m.node_id, context=m.context, unit=m.unit, min=m.min, max=m.max
        )
    policies = _compile_policies(graph)
    privacy = _compile_privacy(graph)
    keys = set(BASE_ATTRIBUTE_KEYS)
    for op_entry in operations.values():
        keys.update(op_entry.required_attributes, op_entry.forbidden_attributes)
    for pol in policies.values():
        keys.update(pol.attribute_keys)
    for priv in privacy.values():
        keys.update(priv.pii_attributes)
    index = RuntimeIndex.model_construct(
        spec_hash=spec_hash,
        nodes={
            nid: NodeEntry.model_construct(
                kind=n.kind.value,
                title=n.title,
                context=n.context,
                deprecated=operations[nid].deprecated if nid in operations else False,
            )
            for nid, n in sorted(graph.nodes.items())
        },
        operations=operations,
        bindings=Bindings.model_construct(
            span=dict(span),
            rpc=rpc,
            http=dict(http),
            messaging=messaging,
            log_event=log_event,
            metric=metric,
        ),
        services={svc: ctx for svc, (ctx, _) in sorted(graph.services.items())},
        metrics=metrics,
        policies=policies,
        privacy=privacy,
        ignore=tuple(
            IgnoreEntry.model_construct(
                context=r.context,
                span_name=r.span_name,
                http_route=r.http_route,
                http_method=r.http_method,
                rpc=f"{r.rpc_service}/{r.rpc_method}" if r.rpc_service else None,
            )
            for r in graph.ignores
        ),
        attribute_keys=tuple(sorted(keys)),
    )
    return index, problems


def _first(ops: list[OperationSpec], get: Callable[[OperationSpec], T]) -> T:
    """The first description that gives a value (validation has made sure they agree)."""
    for op in ops:
        value = get(op)
        if value is not None and value != ():
            return value
    return get(ops[0])


def _merge_operation(
    flow_id: str, ops: list[OperationSpec], ctx_services: dict[str, list[str]]
) -> OperationEntry:
    """One entry from the descriptions of a flow (a SEA flow and/or manifest operations)."""
    head = ops[0]
    service = _first(ops, lambda op: op.service)
    budget = _first(ops, lambda op: op.budget)
    return OperationEntry.model_construct(
        flow_id=flow_id,
        context=head.context,
        name=flow_id.rsplit(":", 1)[-1],
        services=(service,) if service else tuple(ctx_services.get(head.context, ())),
        kind=_first(ops, lambda op: op.kind),
        aliases=tuple(dict.fromkeys(a for op in ops for a in op.aliases)),
        budget=BudgetEntry.model_construct(**{k: getattr(budget, k) for k in Budget.__slots__})
        if budget
        else None,
        required_attributes=_first(ops, lambda op: op.required_attributes),
        forbidden_attributes=_first(ops, lambda op: op.forbidden_attributes),
        calls=_first(ops, lambda op: op.calls),
        requires_calls=_first(ops, lambda op: op.requires_calls),
        steps=_first(ops, lambda op: op.steps),
        policies=_first(ops, lambda op: op.policies),
        deprecated=any(op.deprecated for op in ops),
        deprecated_reason=_first(ops, lambda op: op.deprecated_reason),
    )


def _compile_policies(graph: SpecGraph) -> dict[str, PolicyEntry]:
    out: dict[str, PolicyEntry] = {}
    for p in graph.policies:
        keys: tuple[str, ...] = ()
        runtime = p.assertion is not None and p.language == "expr"
        if runtime and p.assertion is not None:
            # A bad assertion is reported by validation, and then no index is built.
            with contextlib.suppress(ExpressionError):
                keys = compile_assertion(p.assertion).attribute_keys
        out[p.node_id] = PolicyEntry.model_construct(
            node_id=p.node_id, context=p.context, when_flow=p.when_flow,
            assertion=p.assertion if runtime else None, attribute_keys=keys,
        )  # fmt: skip
    return out


def _compile_privacy(graph: SpecGraph) -> dict[str, PrivacyEntry]:
    merged: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for rule in graph.privacy:
        attrs, detectors = merged[rule.context]
        attrs.extend(rule.pii_attributes)
        detectors.extend(rule.detectors)
    return {
        ctx: PrivacyEntry.model_construct(
            pii_attributes=tuple(dict.fromkeys(a)), detectors=tuple(dict.fromkeys(d))
        )
        for ctx, (a, d) in sorted(merged.items())
    }
