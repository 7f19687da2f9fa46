"""SDS YAML: the SDS node, the flows and events it specifies, and what it satisfies."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.spec.model import EdgeKind, Location, NodeKind, SpecEdge, SpecFragment
from sidecar.spec.sds_yaml import parse_sds_yaml

PATH = "specs/sds/checkout.sds.yaml"

SDS = """\
sds:
  id: SDS-041
  title: Checkout orchestration
  bounded_context: checkout
  satisfies_prds: [PRD-012]
  satisfies_adrs:
    - ADR-029
    - ADR-033
  status: Accepted
  owner: team-checkout
cqrs:
  commands:
    - id: CMD-001
      name: PlaceOrder
      emits: EVT-001
      touches: [Order, Payment]
    - id: CMD-002
      name: CancelOrder
      emits: [OrderCancelled, payment:event:Refunded]
  queries:
    - id: QRY-001
      name: GetOrder
      touches: Order
events:
  - id: EVT-001
    name: OrderPlaced
    publish: {topic: orders.order_placed.v1}
  - id: EVT-002
    name: OrderCancelled
"""


def parse(text: str) -> SpecFragment:
    return parse_sds_yaml(PATH, text)


def at(line: int) -> Location:
    return Location(PATH, line)


def messages(fragment: SpecFragment) -> list[str]:
    return [str(p) for p in fragment.problems]


def test_example_has_no_problems() -> None:
    assert parse(SDS).problems == []


def test_sds_node() -> None:
    sds = parse(SDS).nodes[0]
    assert (sds.id, sds.kind, sds.loc, sds.title, sds.status, sds.context, sds.origin) == (
        "SDS-041",
        NodeKind.SDS,
        at(2),
        "Checkout orchestration",
        "Accepted",
        "checkout",
        "sds-yaml",
    )
    assert sds.props == {"owner": "team-checkout"}


def test_nodes_and_lines() -> None:
    nodes = {n.id: (n.kind, n.loc.line, n.context) for n in parse(SDS).nodes}
    assert nodes == {
        "SDS-041": (NodeKind.SDS, 2, "checkout"),
        "checkout:event:OrderPlaced": (NodeKind.EVENT, 25, "checkout"),
        "checkout:event:OrderCancelled": (NodeKind.EVENT, 28, "checkout"),
        "checkout:flow:PlaceOrder": (NodeKind.FLOW, 13, "checkout"),
        "checkout:flow:CancelOrder": (NodeKind.FLOW, 17, "checkout"),
        "checkout:flow:GetOrder": (NodeKind.FLOW, 21, "checkout"),
    }


def test_flow_properties() -> None:
    flows = {n.id: n.props for n in parse(SDS).nodes if n.kind == NodeKind.FLOW}
    assert flows == {
        "checkout:flow:PlaceOrder": {
            "kind": "command",
            "id": "CMD-001",
            "touches": ["Order", "Payment"],
        },
        "checkout:flow:CancelOrder": {"kind": "command", "id": "CMD-002"},
        "checkout:flow:GetOrder": {"kind": "query", "id": "QRY-001", "touches": ["Order"]},
    }


def test_edges_specify_flows_and_events_by_this_sds_within_the_context() -> None:
    edges = {(e.src, e.kind, e.dst, e.loc.line) for e in parse(SDS).edges}
    ctx = "context:checkout"
    assert edges == {
        ("SDS-041", EdgeKind.IN_CONTEXT, ctx, 2),
        ("checkout:event:OrderPlaced", EdgeKind.IN_CONTEXT, ctx, 25),
        ("checkout:event:OrderPlaced", EdgeKind.SPECIFIED_BY, "SDS-041", 25),
        ("checkout:event:OrderCancelled", EdgeKind.IN_CONTEXT, ctx, 28),
        ("checkout:event:OrderCancelled", EdgeKind.SPECIFIED_BY, "SDS-041", 28),
        ("checkout:flow:PlaceOrder", EdgeKind.IN_CONTEXT, ctx, 13),
        ("checkout:flow:PlaceOrder", EdgeKind.SPECIFIED_BY, "SDS-041", 13),
        ("checkout:flow:CancelOrder", EdgeKind.IN_CONTEXT, ctx, 17),
        ("checkout:flow:CancelOrder", EdgeKind.SPECIFIED_BY, "SDS-041", 17),
        ("checkout:flow:GetOrder", EdgeKind.IN_CONTEXT, ctx, 21),
        ("checkout:flow:GetOrder", EdgeKind.SPECIFIED_BY, "SDS-041", 21),
    }


def test_satisfies_references_each_at_its_line() -> None:
    refs = [r for r in parse(SDS).refs if r.edge and r.edge.kind == EdgeKind.SATISFIES]
    assert [(r.target, r.loc.line, r.what) for r in refs] == [
        ("PRD-012", 5, "SDS 'SDS-041': satisfies_prds"),
        ("ADR-029", 7, "SDS 'SDS-041': satisfies_adrs"),
        ("ADR-033", 8, "SDS 'SDS-041': satisfies_adrs"),
    ]
    assert refs[0].edge == SpecEdge("SDS-041", "PRD-012", EdgeKind.SATISFIES, at(5))


def test_emits_references_resolve_event_ids_of_this_file() -> None:
    refs = [r for r in parse(SDS).refs if r.edge and r.edge.kind == EdgeKind.EMITS]
    assert [(r.edge.src if r.edge else "", r.target, r.loc.line, r.what) for r in refs] == [
        (
            "checkout:flow:PlaceOrder",
            "checkout:event:OrderPlaced",
            15,
            "command 'PlaceOrder': emits",
        ),
        (
            "checkout:flow:CancelOrder",
            "checkout:event:OrderCancelled",
            19,
            "command 'CancelOrder': emits",
        ),
        ("checkout:flow:CancelOrder", "payment:event:Refunded", 19, "command 'CancelOrder': emits"),
    ]


def test_events_carry_their_topic() -> None:
    events = {(e.node_id, e.topic, e.context, e.loc.line) for e in parse(SDS).events}
    assert events == {
        ("checkout:event:OrderPlaced", "orders.order_placed.v1", "checkout", 25),
        ("checkout:event:OrderCancelled", None, "checkout", 28),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "sds: {title: T, bounded_context: c}\n",
            [f"{PATH}:1: sds: 'id' is required (like SDS-041)"],
        ),
        ("sds: {id: SDS-1}\n", [f"{PATH}:1: sds: 'bounded_context' is required"]),
        (
            "sds: {id: ADR-1, bounded_context: c}\n",
            [f"{PATH}:1: sds: 'id' must be an SDS id like SDS-041, got 'ADR-1'"],
        ),
        (
            "title: x\n",
            [f"{PATH}:1: an 'sds' section is required (sds: {{id, title, bounded_context, ...}})"],
        ),
        ("sds: [a]\n", [f"{PATH}:1: SDS YAML: 'sds' must be a mapping, got a list"]),
        (
            "sds: {id: SDS-1, bounded_context: c}\ncqrs:\n  commands:\n    - id: CMD-1\n",
            [f"{PATH}:4: command #1: 'name' is required"],
        ),
        (
            "sds: {id: SDS-1, bounded_context: c}\ncqrs: {queries: {name: Q}}\n",
            [f"{PATH}:2: cqrs: 'queries' must be a list, got a mapping"],
        ),
        (
            "sds: {id: SDS-1, bounded_context: c}\nevents:\n  - name: E\n    publish: orders\n",
            [f"{PATH}:4: event 'E': 'publish' must be a mapping, got a string"],
        ),
        (
            "sds:\n  id: SDS-1\n  bounded_context: c\n  id: SDS-2\n",
            [f"{PATH}:4: duplicate key 'id' (first at line 2)"],
        ),
        (
            "sds: {id: SDS-1\n",
            [f"{PATH}:2: invalid YAML: did not find expected ',' or '}}' (column 1)"],
        ),
    ],
)
def test_problems(text: str, expected: list[str]) -> None:
    assert messages(parse(text)) == expected


def test_without_bounded_context_flows_are_skipped_but_the_sds_is_declared() -> None:
    fragment = parse("sds: {id: SDS-1}\ncqrs: {commands: [{name: C}]}\n")
    assert [n.id for n in fragment.nodes] == ["SDS-1"]


def test_without_an_sds_id_flows_are_declared_without_specified_by() -> None:
    fragment = parse("sds: {bounded_context: c}\ncqrs: {commands: [{name: C}]}\n")
    assert [n.id for n in fragment.nodes] == ["c:flow:C"]
    assert {e.kind for e in fragment.edges} == {EdgeKind.IN_CONTEXT}


# --- never raises ------------------------------------------------------------------------------


def assert_well_formed(fragment: SpecFragment, text: str) -> None:
    limit = sum(text.count(c) for c in ("\n", "\r", "\x85", "\u2028", "\u2029")) + 2
    for problem in fragment.problems:
        assert problem.path == PATH
        assert 1 <= problem.line <= limit, (problem, text)
    for loc in [n.loc for n in fragment.nodes] + [r.loc for r in fragment.refs]:
        assert 1 <= loc.line <= limit


def test_every_prefix_parses_without_raising() -> None:
    for end in range(len(SDS) + 1):
        assert_well_formed(parse(SDS[:end]), SDS[:end])


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_parses_without_raising(text: str) -> None:
    assert_well_formed(parse(text), text)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 4), st.sampled_from([*":-{}[], \n'#&*!0a", "~"])),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_example_parses_without_raising(edits: list[tuple[float, int, str]]) -> None:
    text = SDS
    for where, cut, insert in edits:
        pos = int(where * len(text))
        text = text[:pos] + insert + text[pos + cut :]
    assert_well_formed(parse(text), text)
