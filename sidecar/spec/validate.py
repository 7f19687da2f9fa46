"""Validation of a merged spec graph: references, consistency, ranges and cycles.

Every check appends ``path:line: message`` problems to the graph; none raises. Resolving a
reference also adds the edge it declares, so after :func:`validate_graph` the graph's edges are
exactly the truth chain.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections import defaultdict
from collections.abc import Iterable

from sidecar.spec.expr import ExpressionError, compile_assertion
from sidecar.spec.graph import SpecGraph, dedupe_edges
from sidecar.spec.model import (
    Budget,
    EdgeKind,
    NodeKind,
    OperationSpec,
    Problem,
    SpecEdge,
)


def validate_graph(graph: SpecGraph) -> list[Problem]:
    """Run every check; returns all problems (parse problems included), sorted and unique."""
    _resolve_references(graph)
    for ops in graph.operations.values():
        for op in ops:
            _check_budget(graph, op)
            _check_call_lists(graph, op)
        _check_agreement(graph, ops)
    _check_metrics(graph)
    _check_policies(graph)
    _check_supersedes_cycles(graph)
    graph.edges = dedupe_edges(graph.edges)
    return sorted(set(graph.problems))


def suggest(target: str, candidates: Iterable[str]) -> str | None:
    """The closest known id to a mistyped one, if any is close enough."""
    pool = list(candidates)
    # Prefer ids of the same shape (same kind segment / document prefix) before all ids.
    kind = target.split(":")[1] if target.count(":") == 2 else target.split("-", maxsplit=1)[0]
    same = [c for c in pool if kind and kind in c]
    for group in (same, pool):
        match = difflib.get_close_matches(target, group, n=1, cutoff=0.75)
        if match:
            return match[0]
    return None


def _resolve_references(graph: SpecGraph) -> None:
    for ref in graph.refs:
        if ref.target in graph.nodes:
            if ref.edge is not None:
                graph.edges.append(ref.edge)
            continue
        hint = suggest(ref.target, graph.nodes)
        tail = f" (did you mean '{hint}'?)" if hint else ""
        graph.problems.append(
            Problem.at(ref.loc, f"{ref.what} '{ref.target}' is not a known spec node{tail}")
        )


def _owner(op: OperationSpec) -> str:
    name = op.flow_id.rsplit(":", 1)[-1]
    return f"Flow '{name}'" if op.source == "sea" else f"operation '{name}'"


def _label(op: OperationSpec, key: str) -> str:
    if op.source != "sea":
        return key
    return {"budgets": "@budget", "service": "@runtime", "match": "@runtime"}.get(key, "@" + key)


def _check_budget(graph: SpecGraph, op: OperationSpec) -> None:
    budget = op.budget
    if budget is None:
        return
    at = op.loc_of("budgets")
    where = f"{_owner(op)}: {_label(op, 'budgets')}"
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        value = getattr(budget, key)
        if value is not None and not (value > 0 and math.isfinite(value)):
            graph.problems.append(Problem.at(at, f"{where} {key} must be > 0 ms, got {value:g}"))
    ordered = [(k, getattr(budget, k)) for k in ("p50_ms", "p95_ms", "p99_ms")]
    present = [(k, v) for k, v in ordered if v is not None]
    for (k1, v1), (k2, v2) in itertools.pairwise(present):
        if v1 > v2:
            graph.problems.append(Problem.at(at, f"{where} {k2} ({v2:g}) must be >= {k1} ({v1:g})"))
    rate = budget.error_rate
    if rate is not None and not 0.0 <= rate <= 1.0:
        graph.problems.append(
            Problem.at(at, f"{where} error_rate must be between 0 and 1, got {rate:g}")
        )


def _check_call_lists(graph: SpecGraph, op: OperationSpec) -> None:
    if not op.calls:
        return
    allowed = set(op.calls)
    for key in ("requires_calls", "steps"):
        for target in getattr(op, key):
            if target not in allowed:
                graph.problems.append(
                    Problem.at(
                        op.loc_of(key),
                        f"{_owner(op)}: {_label(op, key)} '{target}' is not among its "
                        f"{_label(op, 'calls')} ({', '.join(op.calls)})",
                    )
                )


# Fields compared between descriptions of the same flow, as (attribute, field key for locating).
_COMPARED = (
    ("service", "service"),
    ("kind", "kind"),
    ("bindings", "match"),
    ("calls", "calls"),
    ("requires_calls", "requires_calls"),
    ("steps", "steps"),
    ("required_attributes", "attributes"),
    ("forbidden_attributes", "attributes"),
    ("policies", "policies"),
)


def _check_agreement(graph: SpecGraph, ops: list[OperationSpec]) -> None:
    """A SEA flow and a manifest operation for the same flow must not contradict each other."""
    sources: dict[str, OperationSpec] = {}
    for op in ops:
        sources.setdefault(op.source, op)
    if len(sources) < 2:
        return
    first, *others = sources.values()
    for other in others:
        for attr, key in _COMPARED:
            a, b = getattr(first, attr), getattr(other, attr)
            if _given(a) and _given(b) and _normal(a) != _normal(b):
                _disagree(graph, first, other, key=key, what=attr, va=a, vb=b)
        _compare_budgets(graph, first, other)
        if first.deprecated != other.deprecated and (
            "deprecated" in first.field_locs and "deprecated" in other.field_locs
        ):
            _disagree(
                graph,
                first,
                other,
                key="deprecated",
                what="deprecated",
                va=first.deprecated,
                vb=other.deprecated,
            )


def _given(value: object) -> bool:
    return value is not None and value != ()


def _normal(value: object) -> object:
    if isinstance(value, tuple):
        return sorted(map(str, value))
    return value


def _compare_budgets(graph: SpecGraph, a: OperationSpec, b: OperationSpec) -> None:
    if a.budget is None or b.budget is None:
        return
    for key in Budget.__slots__:
        va, vb = getattr(a.budget, key), getattr(b.budget, key)
        if va is not None and vb is not None and va != vb:
            _disagree(graph, a, b, key="budgets", what=key, va=va, vb=vb)


def _disagree(
    graph: SpecGraph,
    a: OperationSpec,
    b: OperationSpec,
    *,
    key: str,
    what: str,
    va: object,
    vb: object,
) -> None:
    def show(v: object) -> str:
        if isinstance(v, float):
            return f"{v:g}"
        if isinstance(v, tuple):
            return "[" + ", ".join(map(str, v)) + "]"
        return str(v)

    for this, that, vt, vo in ((a, b, va, vb), (b, a, vb, va)):
        graph.problems.append(
            Problem.at(
                this.loc_of(key),
                f"{_owner(this)}: {_label(this, key)} {what} is {show(vt)} here but "
                f"{show(vo)} in {that.source} at {that.loc_of(key)}; the spec must say one thing",
            )
        )


def _check_metrics(graph: SpecGraph) -> None:
    for metric in graph.metrics:
        if metric.min is not None and metric.max is not None and metric.min > metric.max:
            graph.problems.append(
                Problem.at(
                    metric.loc,
                    f"metric '{metric.name}': range min ({metric.min:g}) is greater than "
                    f"max ({metric.max:g})",
                )
            )


def _check_policies(graph: SpecGraph) -> None:
    for policy in graph.policies:
        if policy.assertion is None or policy.language != "expr":
            continue
        try:
            compile_assertion(policy.assertion)
        except ExpressionError as exc:
            name = policy.node_id.rsplit(":", 1)[-1]
            graph.problems.append(
                Problem.at(policy.loc, f"policy '{name}': assert is not a valid expression: {exc}")
            )


def _check_supersedes_cycles(graph: SpecGraph) -> None:
    succ: dict[str, list[SpecEdge]] = defaultdict(list)
    for edge in graph.edges:
        if edge.kind is EdgeKind.SUPERSEDES:
            succ[edge.src].append(edge)
    done: set[str] = set()
    reported: set[frozenset[str]] = set()
    for start in sorted(succ):
        if start in done:
            continue
        # Iterative depth-first search: supersession chains can be long in generated trees.
        path, on_path = [start], {start}
        stack = [iter(succ.get(start, ()))]
        while stack:
            step: SpecEdge | None = next(stack[-1], None)
            if step is None:
                stack.pop()
                on_path.discard(path.pop())
                continue
            if step.dst in on_path:
                cycle = [*path[path.index(step.dst) :], step.dst]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    graph.problems.append(
                        Problem.at(step.loc, "SUPERSEDES cycle: " + " -> ".join(cycle))
                    )
            elif step.dst not in done:
                done.add(step.dst)
                path.append(step.dst)
                on_path.add(step.dst)
                stack.append(iter(succ.get(step.dst, ())))
        done.add(start)


def count_by_kind(graph: SpecGraph) -> tuple[dict[str, int], dict[str, int]]:
    """Node counts by kind and edge counts by kind (for ``spec validate``)."""
    nodes: dict[str, int] = defaultdict(int)
    for node in graph.nodes.values():
        nodes[node.kind.value] += 1
    edges: dict[str, int] = defaultdict(int)
    for edge in graph.edges:
        edges[edge.kind.value] += 1
    order = [k.value for k in NodeKind]
    return (
        {k: nodes[k] for k in order if nodes.get(k)},
        dict(sorted(edges.items())),
    )
