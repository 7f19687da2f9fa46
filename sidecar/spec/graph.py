"""One graph from many fragments: merging nodes, implicit contexts and services, duplicates."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sidecar.spec.model import (
    EdgeKind,
    EventSpec,
    IgnoreRule,
    Location,
    MetricSpec,
    NodeKind,
    OperationSpec,
    PolicySpec,
    PrivacyRule,
    Problem,
    Reference,
    SpecEdge,
    SpecFragment,
    SpecNode,
    context_id,
    service_id,
)

# Kinds that several files may declare together without it being a duplicate: a bounded
# context spans several manifests and SEA files; a service may be listed by several of them.
_SHARED_KINDS = frozenset({NodeKind.CONTEXT, NodeKind.SERVICE})


@dataclass(slots=True)
class SpecGraph:
    """All nodes, edges and runtime expectations of one spec tree, before and after validation."""

    nodes: dict[str, SpecNode] = field(default_factory=dict)
    edges: list[SpecEdge] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    operations: dict[str, list[OperationSpec]] = field(default_factory=lambda: defaultdict(list))
    metrics: list[MetricSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    policies: list[PolicySpec] = field(default_factory=list)
    ignores: list[IgnoreRule] = field(default_factory=list)
    privacy: list[PrivacyRule] = field(default_factory=list)
    #: service.name -> (context, where it was declared)
    services: dict[str, tuple[str, Location]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    def add_fragment(self, frag: SpecFragment) -> None:
        """Merge one file's contribution."""
        for node in frag.nodes:
            self._add_node(node)
        self.edges.extend(frag.edges)
        self.refs.extend(frag.refs)
        for op in frag.operations:
            self.operations[op.flow_id].append(op)
        self.metrics.extend(frag.metrics)
        self.events.extend(frag.events)
        self.policies.extend(frag.policies)
        self.ignores.extend(frag.ignores)
        self.privacy.extend(frag.privacy)
        for name, ctx, loc in frag.services:
            self._add_service(name, ctx, loc)
        self.problems.extend(frag.problems)
        self.notes.extend(frag.notes)

    def finish(self) -> None:
        """Create implicit context and service nodes that edges and operations point at."""
        for ops in self.operations.values():
            for op in ops:
                if op.service:
                    self._add_service(op.service, op.context, op.loc_of("service"))
        for name, (ctx, loc) in self.services.items():
            self._ensure(service_id(name), NodeKind.SERVICE, loc, context=ctx)
            self.edges.append(SpecEdge(service_id(name), context_id(ctx), EdgeKind.BELONGS_TO, loc))
        for edge in list(self.edges):
            if edge.kind in (EdgeKind.IN_CONTEXT, EdgeKind.BELONGS_TO):
                name = edge.dst.removeprefix("context:")
                self._ensure(edge.dst, NodeKind.CONTEXT, edge.loc, title=name, context=name)
        self.edges = dedupe_edges(self.edges)

    def _add_service(self, name: str, ctx: str, loc: Location) -> None:
        known = self.services.get(name)
        if known is None:
            self.services[name] = (ctx, loc)
        elif known[0] != ctx:
            self.problems.append(
                Problem.at(
                    loc,
                    f"service '{name}' is placed in context '{ctx}' here but in context "
                    f"'{known[0]}' at {known[1]}; a service belongs to one context",
                )
            )

    def _ensure(
        self, node_id: str, kind: NodeKind, loc: Location, *, title: str = "", context: str = ""
    ) -> None:
        if node_id not in self.nodes:
            self.nodes[node_id] = SpecNode(
                node_id, kind, loc, title=title or node_id, context=context or None
            )

    def _add_node(self, node: SpecNode) -> None:
        old = self.nodes.get(node.id)
        if old is None:
            self.nodes[node.id] = node
            return
        if old.origin == node.origin and node.kind not in _SHARED_KINDS:
            self.problems.append(
                Problem.at(node.loc, f"duplicate id '{node.id}' (first defined at {old.loc})")
            )
            return
        if old.origin == "implicit":
            node.props = {**old.props, **node.props}
            self.nodes[node.id] = node
            return
        if old.kind != node.kind:
            self.problems.append(
                Problem.at(
                    node.loc,
                    f"id '{node.id}' is declared as a {node.kind.value} here but as a "
                    f"{old.kind.value} at {old.loc}",
                )
            )
            return
        # The same element described by two formats (a SEA flow and its manifest operation):
        # one node, the first description wins for display fields, properties are merged.
        old.title = old.title or node.title
        old.status = old.status or node.status
        old.context = old.context or node.context
        old.props = {**node.props, **old.props}


def dedupe_edges(edges: list[SpecEdge]) -> list[SpecEdge]:
    """Edges without repeats, first declaration kept."""
    seen: set[tuple[str, str, EdgeKind]] = set()
    out: list[SpecEdge] = []
    for edge in edges:
        key = (edge.src, edge.dst, edge.kind)
        if key not in seen:
            seen.add(key)
            out.append(edge)
    return out
