"""Text rendering of the spec graph for ``spec validate`` and ``spec show``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from sidecar.spec.graph import SpecGraph
from sidecar.spec.model import EdgeKind, NodeKind, OperationSpec, SpecEdge, SpecNode
from sidecar.spec.validate import count_by_kind

#: Edges followed upward from a node to the documents that justify it.
CHAIN_EDGES = (EdgeKind.SPECIFIED_BY, EdgeKind.SATISFIES, EdgeKind.PART_OF, EdgeKind.BELONGS_TO)


def render_counts(graph: SpecGraph) -> list[str]:
    """``nodes: N (kind n, ...)`` and ``edges: M (KIND m, ...)``."""
    nodes, edges = count_by_kind(graph)
    return [
        f"nodes: {sum(nodes.values())} ({', '.join(f'{k} {v}' for k, v in nodes.items())})",
        f"edges: {sum(edges.values())} ({', '.join(f'{k} {v}' for k, v in edges.items())})",
    ]


def render_node(graph: SpecGraph, node_id: str) -> list[str]:
    """A node, its runtime expectations, its edges, and its whole chain up to the ADRs."""
    node = graph.nodes[node_id]
    lines = [f"{node.id}  [{node.kind.value}]  {node.title}".rstrip()]
    lines.append(f"  defined at: {node.loc}" + (f" ({node.origin})" if node.origin else ""))
    if node.status:
        lines.append(f"  status: {node.status}")
    if node.context:
        lines.append(f"  context: {node.context}")
    for op in graph.operations.get(node_id, ()):
        lines.extend(_render_operation(op))
    out_edges, in_edges = _edges_of(graph, node_id)
    if out_edges:
        lines.append("  edges out:")
        lines += [f"    -{e.kind.value}-> {e.dst}" for e in out_edges]
    if in_edges:
        lines.append("  edges in:")
        lines += [f"    <-{e.kind.value}- {e.src}" for e in in_edges]
    lines.append("chain:")
    lines.append(f"  {node.id}  {node.title}".rstrip())
    lines += list(_chain(graph, node_id, "  ", {node_id}))
    return lines


def render_overview(graph: SpecGraph) -> list[str]:
    """Every context with its services and flows (one line per flow with its bindings)."""
    flows: dict[str, list[SpecNode]] = defaultdict(list)
    for node in graph.nodes.values():
        if node.kind is not NodeKind.CONTEXT and node.context:
            flows[node.context].append(node)
    docs = [n for n in graph.nodes.values() if n.kind in (NodeKind.ADR, NodeKind.PRD, NodeKind.SDS)]
    lines = ["documents:"]
    lines += [f"  {n.id:<10} {n.status or '':<11} {n.title}" for n in sorted(docs, key=_id)]
    for ctx in sorted({n.context for n in graph.nodes.values() if n.context}):
        lines.append(f"context {ctx}:")
        for node in sorted(flows.get(ctx, ()), key=lambda n: (n.kind.value, n.id)):
            binds = ", ".join(_binding_text(op) for op in graph.operations.get(node.id, ()))
            lines.append(f"  {node.kind.value:<8} {node.id}" + (f"  <- {binds}" if binds else ""))
    return lines


def _id(node: SpecNode) -> str:
    return node.id


def _binding_text(op: OperationSpec) -> str:
    parts: list[str] = []
    for b in op.bindings:
        if b.span_name:
            parts.append(f"span '{b.span_name}'")
        elif b.rpc_service:
            parts.append(f"rpc {b.rpc_service}/{b.rpc_method}")
        elif b.http_route:
            parts.append(f"http {b.http_method or '*'} {b.http_route}")
    return "; ".join(dict.fromkeys(parts))


def _render_operation(op: OperationSpec) -> Iterator[str]:
    yield f"  runtime ({op.source}, {op.loc}):"
    if op.service:
        yield f"    service: {op.service}"
    if op.kind:
        yield f"    kind: {op.kind}"
    for b in op.bindings:
        fields = {k: getattr(b, k) for k in b.__slots__ if getattr(b, k) is not None}
        yield "    binds: " + ", ".join(f"{k}={v}" for k, v in fields.items())
    if op.budget:
        fields = {k: getattr(op.budget, k) for k in op.budget.__slots__}
        yield "    budgets: " + ", ".join(f"{k}={v:g}" for k, v in fields.items() if v is not None)
    for key in (
        "required_attributes",
        "forbidden_attributes",
        "calls",
        "requires_calls",
        "steps",
        "policies",
        "aliases",
    ):
        values = getattr(op, key)
        if values:
            yield f"    {key}: {', '.join(values)}"
    if op.deprecated:
        yield f"    deprecated: {op.deprecated_reason or 'yes'}"


def _edges_of(graph: SpecGraph, node_id: str) -> tuple[list[SpecEdge], list[SpecEdge]]:
    out = sorted((e for e in graph.edges if e.src == node_id), key=lambda e: (e.kind, e.dst))
    inc = sorted((e for e in graph.edges if e.dst == node_id), key=lambda e: (e.kind, e.src))
    return out, inc


def _chain(graph: SpecGraph, node_id: str, indent: str, seen: set[str]) -> Iterator[str]:
    ups = sorted(
        (e for e in graph.edges if e.src == node_id and e.kind in CHAIN_EDGES),
        key=lambda e: (e.kind, e.dst),
    )
    for i, edge in enumerate(ups):
        last = i == len(ups) - 1
        target = graph.nodes.get(edge.dst)
        title = target.title if target else "(unknown)"
        where = f"  ({target.loc})" if target else ""
        yield f"{indent}{'└' if last else '├'}─{edge.kind.value}→ {edge.dst}  {title}{where}"
        if edge.dst not in seen:
            yield from _chain(
                graph, edge.dst, indent + ("   " if last else "│  "), seen | {edge.dst}
            )
