"""Merging fragments and validating the graph, on hand-built fragments (no parsers involved)."""

from sidecar.spec.graph import SpecGraph
from sidecar.spec.model import (
    Binding,
    Budget,
    EdgeKind,
    Location,
    MetricSpec,
    NodeKind,
    OperationSpec,
    Reference,
    SpecEdge,
    SpecFragment,
    SpecNode,
)
from sidecar.spec.validate import suggest, validate_graph


def node(node_id: str, kind: NodeKind, path: str, line: int = 1, origin: str = "markdown"):
    return SpecNode(node_id, kind, Location(path, line), title=node_id, origin=origin)


def graph_of(*fragments: SpecFragment) -> SpecGraph:
    g = SpecGraph()
    for f in fragments:
        g.add_fragment(f)
    g.finish()
    return g


def test_unknown_reference_suggests_closest_id() -> None:
    loc = Location("m.yaml", 14)
    edge = SpecEdge("checkout:flow:PlaceOrder", "payment:flow:Charj", EdgeKind.CALLS, loc)
    frag = SpecFragment(
        "m.yaml",
        nodes=[
            node("checkout:flow:PlaceOrder", NodeKind.FLOW, "m.yaml", 3, "manifest"),
            node("payment:flow:Charge", NodeKind.FLOW, "p.yaml", 3, "manifest"),
        ],
        refs=[Reference("payment:flow:Charj", loc, "operation 'PlaceOrder': calls", edge)],
    )
    problems = validate_graph(graph_of(frag))
    assert [str(p) for p in problems] == [
        "m.yaml:14: operation 'PlaceOrder': calls 'payment:flow:Charj' is not a known spec node "
        "(did you mean 'payment:flow:Charge'?)"
    ]


def test_resolved_reference_becomes_an_edge() -> None:
    loc = Location("sds/1.md", 4)
    edge = SpecEdge("SDS-001", "PRD-001", EdgeKind.SATISFIES, loc)
    g = graph_of(
        SpecFragment(
            "sds/1.md",
            nodes=[node("SDS-001", NodeKind.SDS, "sds/1.md")],
            refs=[Reference("PRD-001", loc, "satisfies", edge)],
        ),
        SpecFragment("prd/1.md", nodes=[node("PRD-001", NodeKind.PRD, "prd/1.md")]),
    )
    assert validate_graph(g) == []
    assert edge in g.edges


def test_duplicate_document_id() -> None:
    g = graph_of(
        SpecFragment("adr/a.md", nodes=[node("ADR-001", NodeKind.ADR, "adr/a.md")]),
        SpecFragment("adr/b.md", nodes=[node("ADR-001", NodeKind.ADR, "adr/b.md")]),
    )
    assert [str(p) for p in validate_graph(g)] == [
        "adr/b.md:1: duplicate id 'ADR-001' (first defined at adr/a.md:1)"
    ]


def test_same_flow_from_sea_and_manifest_is_one_node() -> None:
    g = graph_of(
        SpecFragment("x.sea", nodes=[node("c:flow:F", NodeKind.FLOW, "x.sea", 5, "sea")]),
        SpecFragment(
            "x.manifest.yaml",
            nodes=[node("c:flow:F", NodeKind.FLOW, "x.manifest.yaml", 9, "manifest")],
        ),
    )
    assert validate_graph(g) == []
    assert g.nodes["c:flow:F"].loc == Location("x.sea", 5)


def op(source: str, path: str, **kw: object) -> OperationSpec:
    return OperationSpec(
        "c:flow:F",
        "c",
        Location(path, 2),
        source,
        field_locs={k: Location(path, 3) for k in ("budgets", "calls", "match")},
        **kw,
    )  # type: ignore[arg-type]


def test_sea_and_manifest_disagreement_reported_at_both_places() -> None:
    g = graph_of(
        SpecFragment("x.sea", operations=[op("sea", "x.sea", budget=Budget(p95_ms=300))]),
        SpecFragment("m.yaml", operations=[op("manifest", "m.yaml", budget=Budget(p95_ms=250))]),
    )
    assert [str(p) for p in validate_graph(g)] == [
        "m.yaml:3: operation 'F': budgets p95_ms is 250 here but 300 in sea at x.sea:3; "
        "the spec must say one thing",
        "x.sea:3: Flow 'F': @budget p95_ms is 300 here but 250 in manifest at m.yaml:3; "
        "the spec must say one thing",
    ]


def test_agreeing_descriptions_pass() -> None:
    b = (Binding(span_name="S/F"),)
    g = graph_of(
        SpecFragment("x.sea", operations=[op("sea", "x.sea", bindings=b, budget=Budget(p95_ms=3))]),
        SpecFragment(
            "m.yaml",
            operations=[
                op("manifest", "m.yaml", bindings=b, budget=Budget(p95_ms=3, error_rate=0.1))
            ],
        ),
    )
    assert validate_graph(g) == []


def test_budgets_out_of_range() -> None:
    bad = Budget(p50_ms=0, p95_ms=500, p99_ms=400, error_rate=1.5)
    g = graph_of(SpecFragment("m.yaml", operations=[op("manifest", "m.yaml", budget=bad)]))
    assert [p.message for p in validate_graph(g)] == [
        "operation 'F': budgets error_rate must be between 0 and 1, got 1.5",
        "operation 'F': budgets p50_ms must be > 0 ms, got 0",
        "operation 'F': budgets p99_ms (400) must be >= p95_ms (500)",
    ]


def test_metric_range_inverted() -> None:
    m = MetricSpec("c:metric:m", "app.m", "c", Location("m.yaml", 7), min=10, max=1)
    g = graph_of(SpecFragment("m.yaml", metrics=[m]))
    assert [str(p) for p in validate_graph(g)] == [
        "m.yaml:7: metric 'app.m': range min (10) is greater than max (1)"
    ]


def test_supersedes_cycle_reported_once() -> None:
    frags = []
    for i, target in ((1, 2), (2, 3), (3, 1)):
        path = f"adr/{i}.md"
        loc = Location(path, 3)
        edge = SpecEdge(f"ADR-00{i}", f"ADR-00{target}", EdgeKind.SUPERSEDES, loc)
        frags.append(
            SpecFragment(
                path,
                nodes=[node(f"ADR-00{i}", NodeKind.ADR, path)],
                refs=[Reference(f"ADR-00{target}", loc, "supersedes", edge)],
            )
        )
    problems = validate_graph(graph_of(*frags))
    assert [str(p) for p in problems] == [
        "adr/3.md:3: SUPERSEDES cycle: ADR-001 -> ADR-002 -> ADR-003 -> ADR-001"
    ]


def test_long_supersedes_chain_without_cycle() -> None:
    frags = []
    for i in range(1, 3000):
        path = f"adr/{i}.md"
        loc = Location(path, 3)
        nodes = [node(f"ADR-{i:04d}", NodeKind.ADR, path)]
        refs = []
        if i > 1:
            edge = SpecEdge(f"ADR-{i:04d}", f"ADR-{i - 1:04d}", EdgeKind.SUPERSEDES, loc)
            refs.append(Reference(f"ADR-{i - 1:04d}", loc, "supersedes", edge))
        frags.append(SpecFragment(path, nodes=nodes, refs=refs))
    assert validate_graph(graph_of(*frags)) == []


def test_service_in_two_contexts() -> None:
    a = SpecFragment("a.yaml", services=[("cartservice", "cart", Location("a.yaml", 4))])
    b = SpecFragment("b.yaml", services=[("cartservice", "checkout", Location("b.yaml", 5))])
    assert [str(p) for p in validate_graph(graph_of(a, b))] == [
        "b.yaml:5: service 'cartservice' is placed in context 'checkout' here but in context "
        "'cart' at a.yaml:4; a service belongs to one context"
    ]


def test_implicit_context_and_service_nodes() -> None:
    g = graph_of(SpecFragment("a.yaml", services=[("cartservice", "cart", Location("a.yaml", 4))]))
    assert g.nodes["context:cart"].kind is NodeKind.CONTEXT
    assert g.nodes["service:cartservice"].kind is NodeKind.SERVICE
    assert (
        SpecEdge("service:cartservice", "context:cart", EdgeKind.BELONGS_TO, Location("a.yaml", 4))
        in g.edges
    )


def test_suggest_prefers_same_kind() -> None:
    ids = ["cart:flow:GetCart", "cart:event:GetCart", "ADR-002"]
    assert suggest("cart:flow:GetCrt", ids) == "cart:flow:GetCart"
    assert suggest("ADR-020", ids) == "ADR-002"
    assert suggest("nothing:like:this", ids) is None
