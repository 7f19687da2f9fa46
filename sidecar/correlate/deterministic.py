"""Deterministic correlation of one shape: explicit ``sea.*`` links, ignore rules, bindings.

Rules are tried in a fixed order; the first that fires decides. Each result names the rule
ids that fired so a reader can see *why* an item was linked (``behavior.rule_ids``).

========================  ==========  ===============================================
rule id                   confidence  fires when
========================  ==========  ===============================================
sea.spec_node             1.00        ``sea.spec_node`` names a known node
sea.flow                  1.00        ``sea.flow`` (+ ``sea.context``) names a known flow
ignore.*                  1.00        an ignore rule matches (benign by declaration)
bind.span_name            1.00        (service, span name) is a binding
bind.rpc                  1.00        ``rpc.service``/``rpc.method`` is a binding
bind.http                 1.00        (service, method + route) is a binding
bind.messaging            1.00        the messaging destination is a binding
bind.log_event            1.00        the log's event name is a binding
bind.metric               1.00        the metric name is a binding
bind.span_name.peer       0.95        the span name is bound on exactly one *other* service
                                      (a client span calling that operation)
bind.rpc.from_name        0.95        the span name has the gRPC form ``pkg.Service/Method``
                                      and that is an rpc binding
========================  ==========  ===============================================
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from sidecar.correlate.result import Correlation
from sidecar.correlate.shapes import Shape
from sidecar.evidence.annotations import MatchType
from sidecar.evidence.batch import Signal
from sidecar.spec_index.index import ANY_SERVICE, RuntimeIndex

# OpenTelemetry names gRPC spans `$package.$service/$method`; some SDKs add a leading "/" or
# a "grpc." prefix (both seen in the Online Boutique recording).
_GRPC_NAME = re.compile(r"^/?(?:grpc\.)?([A-Za-z_][\w.]*)/([A-Za-z_]\w*)$")

# Positions in a Shape (see shapes.SHAPE_COLUMNS + SHAPE_ATTRIBUTES).
SIGNAL, KIND, SERVICE, NAME, RPC_SERVICE, RPC_METHOD, HTTP_METHOD, HTTP_ROUTE = range(8)
MESSAGING, EVENT, SEA_NODE, SEA_FLOW, SEA_CONTEXT, SEA_POLICY = range(8, 14)


@dataclass(frozen=True, slots=True)
class Lookups:
    """Tables derived from one index version for the deterministic rules."""

    index: RuntimeIndex
    span_peer: dict[str, str]
    ignore_names: frozenset[str]
    ignore_routes: frozenset[tuple[str, str]]
    ignore_rpc: frozenset[str]
    flows_by_name: dict[str, tuple[str, ...]]

    @classmethod
    def build(cls, index: RuntimeIndex) -> Lookups:
        """Derive the lookup tables from an index."""
        owners: dict[str, set[str]] = defaultdict(set)
        for by_name in index.bindings.span.values():
            for name, flow in by_name.items():
                owners[name].add(flow)
        flows: dict[str, list[str]] = defaultdict(list)
        for flow_id, op in index.operations.items():
            flows[op.name].append(flow_id)
        return cls(
            index=index,
            span_peer={n: next(iter(f)) for n, f in owners.items() if len(f) == 1},
            ignore_names=frozenset(r.span_name for r in index.ignore if r.span_name),
            ignore_routes=frozenset(
                (r.http_method or "*", r.http_route) for r in index.ignore if r.http_route
            ),
            ignore_rpc=frozenset(r.rpc for r in index.ignore if r.rpc),
            flows_by_name={k: tuple(v) for k, v in flows.items()},
        )

    def context_of(self, node: str, service: str) -> str:
        """The bounded context of a node, else of the service."""
        entry = self.index.nodes.get(node)
        if entry is not None and entry.context:
            return entry.context
        return self.index.services.get(service, "")


def _hit(lk: Lookups, node: str, service: str, rule: str, confidence: float = 1.0) -> Correlation:
    return Correlation(node, lk.context_of(node, service), MatchType.DETERMINISTIC, confidence,
                       (rule,))  # fmt: skip


def resolve(shape: Shape, lk: Lookups) -> Correlation | None:
    """The deterministic correlation of a shape, or None when no rule fires."""
    service = shape[SERVICE]
    explicit = _explicit(shape, lk)
    if explicit is not None:
        return explicit
    signal = int(shape[SIGNAL])
    if signal == Signal.SPAN:
        return _span(shape, lk)
    b = lk.index.bindings
    if signal == Signal.LOG:
        event = shape[EVENT] or shape[NAME]
        node = b.log_event.get(event)
        return _hit(lk, node, service, "bind.log_event") if node else None
    node = b.metric.get(shape[NAME])
    return _hit(lk, node, service, "bind.metric") if node else None


def _explicit(shape: Shape, lk: Lookups) -> Correlation | None:
    service, nodes = shape[SERVICE], lk.index.nodes
    spec_node = shape[SEA_NODE]
    if spec_node:
        if spec_node in nodes:
            return _hit(lk, spec_node, service, "sea.spec_node")
        return Correlation(
            "", lk.index.services.get(service, ""), MatchType.NONE, 0.0, ("sea.spec_node",),
            reason=f"sea.spec_node '{spec_node}' is not a node of this spec",
        )  # fmt: skip
    flow = shape[SEA_FLOW]
    if not flow:
        return None
    ctx = shape[SEA_CONTEXT]
    if ":" in flow:
        candidates: tuple[str, ...] = (flow,) if flow in nodes else ()
    elif ctx:
        fid = f"{ctx}:flow:{flow}"
        candidates = (fid,) if fid in nodes else ()
    else:
        candidates = lk.flows_by_name.get(flow, ())
    if len(candidates) == 1:
        return _hit(lk, candidates[0], service, "sea.flow")
    why = "names no flow of this spec" if not candidates else "is ambiguous without sea.context"
    return Correlation("", lk.index.services.get(service, ""), MatchType.NONE, 0.0,
                       ("sea.flow",), reason=f"sea.flow '{flow}' {why}")  # fmt: skip


def _span(shape: Shape, lk: Lookups) -> Correlation | None:
    service, name = shape[SERVICE], shape[NAME]
    b = lk.index.bindings
    route = (shape[HTTP_METHOD] or "*", shape[HTTP_ROUTE])
    rpc = f"{shape[RPC_SERVICE]}/{shape[RPC_METHOD]}" if shape[RPC_METHOD] else ""
    if name in lk.ignore_names or (shape[HTTP_ROUTE] and (
            route in lk.ignore_routes or ("*", route[1]) in lk.ignore_routes)) or (
            rpc and rpc in lk.ignore_rpc):  # fmt: skip
        return Correlation("", lk.index.services.get(service, ""), MatchType.NONE, 1.0,
                           ("ignore",), ignored=True)  # fmt: skip
    for scope in (service, ANY_SERVICE):
        node = b.span.get(scope, {}).get(name)
        if node:
            return _hit(lk, node, service, "bind.span_name")
    if rpc and rpc in b.rpc:
        return _hit(lk, b.rpc[rpc], service, "bind.rpc")
    if shape[HTTP_ROUTE]:
        for scope in (service, ANY_SERVICE):
            table = b.http.get(scope, {})
            node = table.get(f"{route[0]} {route[1]}") or table.get(f"* {route[1]}")
            if node:
                return _hit(lk, node, service, "bind.http")
    if shape[MESSAGING] and shape[MESSAGING] in b.messaging:
        return _hit(lk, b.messaging[shape[MESSAGING]], service, "bind.messaging")
    peer = lk.span_peer.get(name)
    if peer:
        return _hit(lk, peer, service, "bind.span_name.peer", 0.95)
    match = _GRPC_NAME.match(name)
    if match is not None:
        node = b.rpc.get(f"{match.group(1)}/{match.group(2)}")
        if node:
            return _hit(lk, node, service, "bind.rpc.from_name", 0.95)
    return None
