"""Manifests: generated-code fields kept, the behavior section read, problems at the right line."""

from __future__ import annotations

import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.spec.manifest import parse_manifest
from sidecar.spec.model import (
    Binding,
    Budget,
    EdgeKind,
    Location,
    NodeKind,
    SpecEdge,
    SpecFragment,
)

PATH = "specs/checkout/checkout.manifest.yaml"
JSON_PATH = "specs/checkout/checkout.manifest.json"

MANIFEST = """\
manifestVersion: "1.0"
context: {name: checkout, sdsId: SDS-041, prdIds: [PRD-012], adrIds: [ADR-029]}
model: {entities: [Order]}
behavior:
  services: [checkoutservice]
  operations:
    - flow: PlaceOrder
      kind: command
      match:
        span_name: "hipstershop.CheckoutService/PlaceOrder"
        rpc: {service: hipstershop.CheckoutService, method: PlaceOrder}
        http: {method: post, route: /cart/checkout}
      aliases: ["place order", "checkout"]
      budgets: {p95_ms: 300, p99_ms: 800, error_rate: 0.01}
      attributes: {required: [app.order.id], forbidden: [app.user.email]}
      calls: [cart:flow:GetCart, payment:flow:Charge]
      requires_calls: [payment:flow:Charge]
      steps: [cart:flow:GetCart, payment:flow:Charge]
      policies: [no_negative_payment]
      deprecated: false
    - flow: CancelOrder
      service: checkoutservice
      calls: [payment:flow:Charj]
  events:  [{id: OrderPlaced, log: {event_name: order.placed}, topic: orders.v1}]
  metrics: [{name: app.orders.placed, unit: "{order}", range: {min: 0, max: 1000}}]
  ignore:  [{span_name: "grpc.health.v1.Health/Check"}, {http: {route: /_healthz}}]
  policies:
    - id: no_negative_payment
      when: {flow: PlaceOrder}
      assert: "attributes['app.payment.amount'] >= 0"
  privacy:
    pii_attributes: [app.user.email, app.card.number]
    detectors: [email, credit_card, bearer_token, phone]
"""


def parse(text: str, path: str = PATH) -> SpecFragment:
    return parse_manifest(path, text)


def messages(fragment: SpecFragment) -> list[str]:
    return [str(p) for p in fragment.problems]


def at(line: int, path: str = PATH) -> Location:
    return Location(path, line)


def with_behavior(behavior: str, context: str = "context: {name: checkout}") -> str:
    return f"{context}\nbehavior:\n{behavior}"


# --- the full example --------------------------------------------------------------------------


def test_example_has_no_problems() -> None:
    fragment = parse(MANIFEST)
    assert fragment.problems == []
    assert fragment.notes == []


def test_context_node_keeps_manifest_fields() -> None:
    context = parse(MANIFEST).nodes[0]
    assert (context.id, context.kind, context.loc, context.origin) == (
        "context:checkout",
        NodeKind.CONTEXT,
        at(2),
        "manifest",
    )
    assert context.props == {
        "sdsId": "SDS-041",
        "prdIds": ["PRD-012"],
        "adrIds": ["ADR-029"],
        "manifestVersion": "1.0",
        "model": {"entities": ["Order"]},
    }


def test_nodes_and_their_lines() -> None:
    nodes = {n.id: (n.kind, n.loc.line, n.context, n.origin) for n in parse(MANIFEST).nodes}
    assert nodes == {
        "context:checkout": (NodeKind.CONTEXT, 2, "checkout", "manifest"),
        "service:checkoutservice": (NodeKind.SERVICE, 5, "checkout", "manifest"),
        "checkout:flow:PlaceOrder": (NodeKind.FLOW, 7, "checkout", "manifest"),
        "checkout:flow:CancelOrder": (NodeKind.FLOW, 21, "checkout", "manifest"),
        "checkout:event:OrderPlaced": (NodeKind.EVENT, 24, "checkout", "manifest"),
        "checkout:metric:app.orders.placed": (NodeKind.METRIC, 25, "checkout", "manifest"),
        "checkout:policy:no_negative_payment": (NodeKind.POLICY, 28, "checkout", "manifest"),
    }


def test_edges_place_elements_in_the_context_and_services_in_it() -> None:
    edges = {(e.src, e.kind, e.dst) for e in parse(MANIFEST).edges}
    ctx = "context:checkout"
    assert edges == {
        ("service:checkoutservice", EdgeKind.BELONGS_TO, ctx),
        ("checkout:flow:PlaceOrder", EdgeKind.IN_CONTEXT, ctx),
        ("checkout:flow:CancelOrder", EdgeKind.IN_CONTEXT, ctx),
        ("checkout:event:OrderPlaced", EdgeKind.IN_CONTEXT, ctx),
        ("checkout:metric:app.orders.placed", EdgeKind.IN_CONTEXT, ctx),
        ("checkout:policy:no_negative_payment", EdgeKind.IN_CONTEXT, ctx),
    }


def test_context_references_documents_so_typos_are_caught() -> None:
    refs = [r for r in parse(MANIFEST).refs if r.what.startswith("context")]
    related = {
        (r.target, r.what, r.loc.line) for r in refs if r.edge and r.edge.kind == "RELATED_TO"
    }
    assert related == {
        ("SDS-041", "context 'checkout': sdsId", 2),
        ("PRD-012", "context 'checkout': prdIds", 2),
        ("ADR-029", "context 'checkout': adrIds", 2),
    }
    specified = sorted(r.edge.src for r in refs if r.edge and r.edge.kind == "SPECIFIED_BY")
    assert specified == [
        "checkout:event:OrderPlaced",
        "checkout:flow:CancelOrder",
        "checkout:flow:PlaceOrder",
        "checkout:metric:app.orders.placed",
        "checkout:policy:no_negative_payment",
    ]
    assert {(r.target, r.loc, r.what) for r in refs if r.target.startswith("SDS")} == {
        ("SDS-041", at(2), "context 'checkout': sdsId")
    }


def test_operations_are_read_by_the_shared_reader() -> None:
    place, cancel = parse(MANIFEST).operations
    assert place.flow_id == "checkout:flow:PlaceOrder"
    assert (place.context, place.loc, place.source, place.kind) == (
        "checkout",
        at(7),
        "manifest",
        "command",
    )
    assert place.service is None  # the index compiler uses the context's services
    assert place.bindings == (
        Binding(
            span_name="hipstershop.CheckoutService/PlaceOrder",
            rpc_service="hipstershop.CheckoutService",
            rpc_method="PlaceOrder",
            http_method="POST",
            http_route="/cart/checkout",
        ),
    )
    assert place.budget == Budget(p95_ms=300, p99_ms=800, error_rate=0.01)
    assert place.calls == ("cart:flow:GetCart", "payment:flow:Charge")
    assert place.policies == ("checkout:policy:no_negative_payment",)
    assert place.loc_of("calls") == at(16)
    assert cancel.service == "checkoutservice"


def test_reference_of_a_misspelt_callee_points_at_the_calls_line_of_operation_two() -> None:
    refs = [r for r in parse(MANIFEST).refs if r.target == "payment:flow:Charj"]
    assert len(refs) == 1
    assert refs[0].loc == at(23)
    assert refs[0].what == "operation 'CancelOrder': calls"
    assert refs[0].edge == SpecEdge(
        "checkout:flow:CancelOrder", "payment:flow:Charj", EdgeKind.CALLS, at(23)
    )


def test_events_metrics_ignores_policies_privacy_services() -> None:
    fragment = parse(MANIFEST)
    (event,) = fragment.events
    assert (event.node_id, event.log_event, event.topic, event.loc) == (
        "checkout:event:OrderPlaced",
        "order.placed",
        "orders.v1",
        at(24),
    )
    (metric,) = fragment.metrics
    assert (metric.name, metric.unit, metric.min, metric.max) == (
        "app.orders.placed",
        "{order}",
        0,
        1000,
    )
    health, healthz = fragment.ignores
    assert (health.span_name, health.http_route) == ("grpc.health.v1.Health/Check", None)
    assert (healthz.span_name, healthz.http_route, healthz.context) == (
        None,
        "/_healthz",
        "checkout",
    )
    (policy,) = fragment.policies
    assert policy.when_flow == "checkout:flow:PlaceOrder"
    assert policy.assertion == "attributes['app.payment.amount'] >= 0"
    (privacy,) = fragment.privacy
    assert privacy.pii_attributes == ("app.user.email", "app.card.number")
    assert privacy.detectors == ("email", "credit_card", "bearer_token", "phone")
    assert privacy.loc == at(31)
    assert fragment.services == [("checkoutservice", "checkout", at(5))]


def test_policy_when_flow_is_a_reference_that_governs_the_flow() -> None:
    (ref,) = [r for r in parse(MANIFEST).refs if r.what.startswith("policy")]
    assert (ref.target, ref.loc, ref.what) == (
        "checkout:flow:PlaceOrder",
        at(29),
        "policy 'no_negative_payment': when.flow",
    )
    assert ref.edge == SpecEdge(
        "checkout:flow:PlaceOrder",
        "checkout:policy:no_negative_payment",
        EdgeKind.GOVERNED_BY,
        at(29),
    )


def test_json_manifest_reads_the_same_with_json_lines() -> None:
    text = json.dumps(yaml.safe_load(MANIFEST), indent=2)
    from_json = parse(text, JSON_PATH)
    from_yaml = parse(MANIFEST)
    assert from_json.problems == []
    assert [n.id for n in from_json.nodes] == [n.id for n in from_yaml.nodes]
    assert [o.calls for o in from_json.operations] == [o.calls for o in from_yaml.operations]
    lines = text.splitlines()
    charj = next(r for r in from_json.refs if r.target == "payment:flow:Charj")
    assert '"calls"' in lines[charj.loc.line - 1]
    cancel = from_json.operations[1]
    assert lines[cancel.loc.line - 1].strip() == "{"
    assert '"flow": "CancelOrder"' in lines[cancel.loc.line]
    assert all(loc.path == JSON_PATH for loc in (charj.loc, cancel.loc))


def test_without_behavior_only_the_context_is_declared() -> None:
    fragment = parse("manifestVersion: '1.0'\ncontext: {name: billing}\nmodel: {}\n")
    assert fragment.problems == []
    assert [n.id for n in fragment.nodes] == ["context:billing"]
    assert fragment.refs == []


def test_without_sds_there_are_no_specified_by_references() -> None:
    fragment = parse(with_behavior("  events: [{id: E}]\n"))
    assert fragment.refs == []
    assert [n.id for n in fragment.nodes] == ["context:checkout", "checkout:event:E"]


# --- problems, with exact messages and lines ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "model: {}\n",
            f"{PATH}:1: context.name is required (the bounded context this manifest describes)",
        ),
        (
            "model: {}\ncontext: {sdsId: SDS-1}\n",
            f"{PATH}:2: context.name is required (the bounded context this manifest describes)",
        ),
        (
            "context:\n  name:\n",
            f"{PATH}:1: context.name is required (the bounded context this manifest describes)",
        ),
        ("context: checkout\n", f"{PATH}:1: manifest: 'context' must be a mapping, got a string"),
        ("context: {name: 'a:b'}\n", f"{PATH}:1: context: 'name' must be a plain name, got 'a:b'"),
    ],
)
def test_context_problems(text: str, expected: str) -> None:
    fragment = parse(text)
    assert messages(fragment) == [expected]
    assert fragment.nodes == []


def test_missing_context_name_skips_the_behavior_section() -> None:
    fragment = parse("behavior:\n  operations: [{flow: A}]\n")
    assert len(fragment.problems) == 1
    assert fragment.operations == []


def test_invalid_json_message() -> None:
    fragment = parse('{\n  "context": {"name": "checkout"}\n  "behavior": {}\n}', JSON_PATH)
    assert messages(fragment) == [
        f"{JSON_PATH}:3: invalid JSON: Expecting ',' delimiter (column 3)"
    ]


def test_invalid_yaml_message() -> None:
    fragment = parse("context: {name: checkout}\nbehavior:\n  services: a: b\n")
    assert messages(fragment) == [
        f"{PATH}:3: invalid YAML: mapping values are not allowed in this context (column 14)"
    ]


def test_duplicate_key_message() -> None:
    fragment = parse(
        with_behavior("  operations:\n    - flow: A\n      kind: query\n      kind: command\n")
    )
    assert messages(fragment) == [f"{PATH}:6: duplicate key 'kind' (first at line 5)"]
    assert fragment.operations[0].kind == "command"


def test_unknown_behavior_key_message() -> None:
    fragment = parse(with_behavior("  services: [a]\n  operatons: []\n"))
    assert messages(fragment) == [
        f"{PATH}:4: behavior: unknown key 'operatons' (expected one of services, "
        "operations, events, metrics, ignore, policies, privacy)"
    ]


def test_unknown_detector_message() -> None:
    fragment = parse(with_behavior("  privacy:\n    detectors:\n      - email\n      - ssn\n"))
    assert messages(fragment) == [
        f"{PATH}:6: privacy: unknown detector 'ssn' "
        "(expected one of email, credit_card, bearer_token, phone)"
    ]
    assert fragment.privacy[0].detectors == ("email",)


def test_unknown_privacy_key() -> None:
    fragment = parse(with_behavior("  privacy: {pii: [a]}\n"))
    assert messages(fragment) == [
        f"{PATH}:3: privacy: unknown key 'pii' (expected one of pii_attributes, detectors)"
    ]


def test_operation_problems_point_at_their_lines() -> None:
    fragment = parse(
        with_behavior(
            "  operations:\n"
            "    - flow: A\n"
            "      budgets:\n"
            "        p95_ms: fast\n"
            "    - kind: command\n"
            "    - flow: B\n"
            "      colls: [x]\n"
            "      kind: sometimes\n"
        )
    )
    assert messages(fragment) == [
        f"{PATH}:6: operation 'A': 'p95_ms' must be a number, got a string",
        f"{PATH}:7: operation #2: 'flow' is required",
        f"{PATH}:9: operation 'B': unknown operation key 'colls' (expected one of flow, kind, "
        "service, match, aliases, budgets, attributes, calls, requires_calls, steps, policies, "
        "deprecated)",
        f"{PATH}:10: operation 'B': kind 'sometimes' is not one of command, query, "
        "event-handler, internal",
    ]
    assert [o.flow_id for o in fragment.operations] == ["checkout:flow:A", "checkout:flow:B"]


def test_operation_flow_must_be_a_plain_name() -> None:
    fragment = parse(with_behavior("  operations: [{flow: 'billing:flow:X'}]\n"))
    assert messages(fragment) == [
        f"{PATH}:3: operation #1: 'flow' must be a plain name, got 'billing:flow:X'"
    ]
    assert fragment.operations == []


@pytest.mark.parametrize(
    ("behavior", "expected"),
    [
        ("  operations: {flow: A}\n", "3: behavior: 'operations' must be a list, got a mapping"),
        (
            "  operations: [PlaceOrder]\n",
            "3: behavior: operations #1 must be a mapping, got a string",
        ),
        (
            "  services: {a: 1}\n",
            "3: behavior: 'services' must be a list of strings, got a mapping",
        ),
        ("  services: ['']\n", "3: manifest: empty service name"),
        ("  events: [{log: {event_name: x}}]\n", "3: event #1: 'id' is required"),
        ("  events: [{id: E, log: x}]\n", "3: event 'E': 'log' must be a mapping, got a string"),
        (
            "  events: [{id: E, log: {name: x}}]\n",
            "3: event 'E': unknown log key 'name' (expected one of event_name)",
        ),
        (
            "  metrics: [{name: m, range: {min: low}}]\n",
            "3: metric 'm': 'min' must be a number, got a string",
        ),
        (
            "  metrics: [{name: m, units: s}]\n",
            "3: metric 'm': unknown metric key 'units' (expected one of name, unit, range)",
        ),
        ("  metrics: [{unit: s}]\n", "3: metric #1: 'name' is required"),
        (
            "  policies: [{id: p, when: {span: x}}]\n",
            "3: policy 'p': unknown when key 'span' (expected one of flow)",
        ),
        ("  policies: [{when: {flow: A}}]\n", "3: policy #1: 'id' is required"),
        ("  privacy: [email]\n", "3: behavior: 'privacy' must be a mapping, got a list"),
        (
            "  ignore: [{}]\n",
            "3: ignore rule #1: empty rule (expected one of span_name, http, rpc)",
        ),
        (
            "  ignore: [{messaging: {destination: q}}]\n",
            "3: ignore rule #1: unknown ignore key 'messaging' "
            "(expected one of span_name, http, rpc)",
        ),
    ],
)
def test_behavior_shape_problems(behavior: str, expected: str) -> None:
    assert messages(parse(with_behavior(behavior))) == [f"{PATH}:{expected}"]


def test_ignore_rule_with_a_malformed_rpc_has_no_binding() -> None:
    fragment = parse(with_behavior("  ignore: [{rpc: NoSlash}]\n"))
    assert messages(fragment) == [
        f"{PATH}:3: ignore rule #1: rpc 'NoSlash' must be 'package.Service/Method'",
        f"{PATH}:3: ignore rule #1: 'match' has no binding (span_name, rpc, http, ...)",
    ]
    assert fragment.ignores == []


def test_ignore_rule_by_rpc_string() -> None:
    fragment = parse(
        with_behavior("  ignore: [{rpc: grpc.health.v1.Health/Check, http: {method: get}}]\n")
    )
    assert fragment.problems == []
    (rule,) = fragment.ignores
    assert (rule.rpc_service, rule.rpc_method, rule.http_method) == (
        "grpc.health.v1.Health",
        "Check",
        "GET",
    )


def test_policy_when_flow_may_name_another_context() -> None:
    fragment = parse(with_behavior("  policies: [{id: p, when: {flow: 'payment:flow:Charge'}}]\n"))
    assert fragment.policies[0].when_flow == "payment:flow:Charge"


def test_near_miss_top_level_key_is_a_problem_other_keys_are_notes() -> None:
    fragment = parse("context: {name: c}\nbehaviour: {}\ngenerator: {tool: x}\n")
    assert messages(fragment) == [
        f"{PATH}:2: unknown top-level key 'behaviour' (did you mean 'behavior'?)"
    ]
    assert [str(n) for n in fragment.notes] == [
        f"{PATH}:3: top-level key 'generator' ignored "
        "(not one of manifestVersion, context, model, behavior)"
    ]


def test_suffix_picks_the_format() -> None:
    assert parse("context: {name: c}\n", JSON_PATH).problems[0].message.startswith("invalid JSON")
    assert parse('{"context": {"name": "c"}}', "a/x.manifest.yml").problems == []


# --- never raises ------------------------------------------------------------------------------


def max_line(text: str) -> int:
    return sum(text.count(c) for c in ("\n", "\r", "\x85", "\u2028", "\u2029")) + 2


def assert_well_formed(fragment: SpecFragment, text: str, path: str) -> None:
    limit = max_line(text)
    for problem in fragment.problems + fragment.notes:
        assert problem.path == path
        assert 1 <= problem.line <= limit, (problem, text)
    locs = (
        [n.loc for n in fragment.nodes]
        + [r.loc for r in fragment.refs]
        + [e.loc for e in fragment.edges]
    )
    locs += [o.loc for o in fragment.operations]
    for loc in locs:
        assert loc.path == path
        assert 1 <= loc.line <= limit


JSON_MANIFEST = json.dumps(yaml.safe_load(MANIFEST), indent=1)


def test_every_prefix_of_the_example_parses_without_raising() -> None:
    for path, text in ((PATH, MANIFEST), (JSON_PATH, JSON_MANIFEST)):
        for end in range(len(text) + 1):
            assert_well_formed(parse(text[:end], path), text[:end], path)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200), st.sampled_from([PATH, JSON_PATH]))
def test_random_text_parses_without_raising(text: str, path: str) -> None:
    assert_well_formed(parse(text, path), text, path)


mutation_alphabet = st.sampled_from(
    [*":-{}[], \n\"'#&*!<>|?0123456789abc\t", "true", "null", "~", "<<: *a"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([(PATH, MANIFEST), (JSON_PATH, JSON_MANIFEST)]),
    st.lists(
        st.tuples(st.floats(0, 1), st.integers(0, 4), mutation_alphabet), min_size=1, max_size=4
    ),
)
def test_mutated_examples_parse_without_raising(
    example: tuple[str, str], edits: list[tuple[float, int, str]]
) -> None:
    path, text = example
    for where, cut, insert in edits:
        pos = int(where * len(text))
        text = text[:pos] + insert + text[pos + cut :]
    assert_well_formed(parse(text, path), text, path)


def value_paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a value inside a parsed document."""
    out = [prefix] if prefix else []
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        out += value_paths(item, (*prefix, key))
    return out


odd_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from(["", "a:b", "x", "GET", "p/q"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["flow", "id", "name", "rpc", "http", "x"]), children, max_size=3
        )
    ),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.sampled_from([PATH, JSON_PATH]))
def test_wrong_types_anywhere_are_problems_not_crashes(data: st.DataObject, path: str) -> None:
    doc = yaml.safe_load(MANIFEST)
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.sampled_from(value_paths(doc)))
        parent = doc
        for key in where[:-1]:
            parent = parent[key]
        parent[where[-1]] = data.draw(odd_values)
    text = json.dumps(doc, indent=1) if path == JSON_PATH else yaml.safe_dump(doc)
    assert_well_formed(parse(text, path), text, path)


def test_document_lists_of_the_wrong_type_are_reported_once() -> None:
    fragment = parse("context: {name: c, prdIds: {a: 1}}\n")
    assert messages(fragment) == [
        f"{PATH}:1: context: 'prdIds' must be a list of strings, got a mapping"
    ]
    assert fragment.nodes[0].props["prdIds"] == []
