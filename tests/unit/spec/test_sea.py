"""SEA DSL parser: declarations, annotations, runtime fields, messages and robustness."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.spec.model import EdgeKind, Location, NodeKind, SpecFragment
from sidecar.spec.sea import parse_sea, sea_annotation_name_for

PATH = "specs/orders.sea"

EXAMPLE = """\
// Orders bounded context
@namespace "com.example.orders"
@context "orders"
Entity "Order" in orders
Flow "PlaceOrder"
  @cqrs { "kind": "command" }
  @sds "SDS-041"
  @runtime { "service": "checkout", "rpc": "oteldemo.CheckoutService/PlaceOrder" }
  @budget { "p95_ms": 300, "error_rate": 0.01 }
  @calls ["payments:flow:Charge", "cart:flow:GetCart"]
  @emits ["OrderPlaced"]
from "Customer" to "Order" quantity 1
Policy no_negative_payment per Constraint Prohibition priority 10
  @rationale "Amounts cannot be negative"
as: forall f in flows where f.resource = "Money": (f.quantity >= 0)
Metric "daily_orders" as: count(o in entities over last 24 "hours": 1) @threshold 100
Event "OrderPlaced"
  @log {"event_name": "order.placed"}
  @topic "orders.order_placed.v1"
"""


def parse(text: str) -> SpecFragment:
    return parse_sea(PATH, textwrap.dedent(text))


def messages(items: list[object]) -> list[str]:
    return [str(p) for p in items]


def node(frag: SpecFragment, node_id: str):  # type: ignore[no-untyped-def]
    matches = [n for n in frag.nodes if n.id == node_id]
    assert len(matches) == 1, [n.id for n in frag.nodes]
    return matches[0]


# -- the documented example ----------------------------------------------------------------------


def test_example_has_no_problems_and_every_declaration() -> None:
    frag = parse_sea(PATH, EXAMPLE)
    assert frag.problems == []
    assert frag.notes == []
    assert [(n.id, n.kind, n.loc.line) for n in frag.nodes] == [
        ("orders:entity:Order", NodeKind.ENTITY, 4),
        ("orders:flow:PlaceOrder", NodeKind.FLOW, 5),
        ("orders:policy:no_negative_payment", NodeKind.POLICY, 13),
        ("orders:metric:daily_orders", NodeKind.METRIC, 16),
        ("orders:event:OrderPlaced", NodeKind.EVENT, 17),
    ]
    assert all(n.origin == "sea" and n.context == "orders" for n in frag.nodes)
    assert all(n.loc.path == PATH for n in frag.nodes)


def test_every_node_gets_an_in_context_edge_at_its_line() -> None:
    frag = parse_sea(PATH, EXAMPLE)
    in_context = {(e.src, e.dst, e.loc.line) for e in frag.edges if e.kind is EdgeKind.IN_CONTEXT}
    assert in_context == {(n.id, "context:orders", n.loc.line) for n in frag.nodes}


def test_flow_operation_reads_runtime_annotations() -> None:
    frag = parse_sea(PATH, EXAMPLE)
    (op,) = frag.operations
    assert op.flow_id == "orders:flow:PlaceOrder"
    assert op.source == "sea"
    assert op.context == "orders"
    assert op.loc == Location(PATH, 5)
    assert op.service == "checkout"
    assert op.kind == "command"
    assert [(b.rpc_service, b.rpc_method) for b in op.bindings] == [
        ("oteldemo.CheckoutService", "PlaceOrder")
    ]
    assert op.budget is not None
    assert (op.budget.p95_ms, op.budget.error_rate) == (300.0, 0.01)
    assert op.calls == ("payments:flow:Charge", "cart:flow:GetCart")
    # each field is located at the annotation that supplied it
    assert op.loc_of("kind").line == 6
    assert op.loc_of("service").line == 8
    assert op.loc_of("match").line == 8
    assert op.loc_of("budgets").line == 9
    assert op.loc_of("calls").line == 10
    assert frag.services == [("checkout", "orders", Location(PATH, 8))]


def test_calls_emits_and_sds_become_references_with_edges() -> None:
    frag = parse_sea(PATH, EXAMPLE)
    refs = {(r.what, r.target, r.loc.line, r.edge.kind if r.edge else None) for r in frag.refs}
    assert refs == {
        ("Flow 'PlaceOrder': @calls", "payments:flow:Charge", 10, EdgeKind.CALLS),
        ("Flow 'PlaceOrder': @calls", "cart:flow:GetCart", 10, EdgeKind.CALLS),
        ("Flow 'PlaceOrder': @emits", "orders:event:OrderPlaced", 11, EdgeKind.EMITS),
        ("Flow 'PlaceOrder': @sds", "SDS-041", 7, EdgeKind.SPECIFIED_BY),
    }
    assert all(r.edge is not None and r.edge.src == "orders:flow:PlaceOrder" for r in frag.refs)


def test_resource_flow_line_belongs_to_the_flow_as_props() -> None:
    flow = node(parse_sea(PATH, EXAMPLE), "orders:flow:PlaceOrder")
    assert flow.props == {"from": "Customer", "to": "Order", "quantity": 1}


def test_policy_reads_priority_modality_rationale_and_assertion() -> None:
    frag = parse_sea(PATH, EXAMPLE)
    (policy,) = frag.policies
    assert policy.node_id == "orders:policy:no_negative_payment"
    assert policy.priority == 10
    assert policy.assertion == 'forall f in flows where f.resource = "Money": (f.quantity >= 0)'
    props = node(frag, policy.node_id).props
    assert props["rationale"] == "Amounts cannot be negative"
    assert props["policy_kind"] == "Constraint"
    assert props["modality"] == "Prohibition"


def test_metric_threshold_is_a_prop_not_a_range() -> None:
    frag = parse_sea(PATH, EXAMPLE)
    (metric,) = frag.metrics
    assert (metric.node_id, metric.name, metric.context) == (
        "orders:metric:daily_orders",
        "daily_orders",
        "orders",
    )
    assert (metric.min, metric.max, metric.unit) == (None, None, None)
    props = node(frag, metric.node_id).props
    assert props["threshold"] == 100
    assert props["expression"].startswith("count(o in entities over last 24")


def test_event_reads_log_event_and_topic() -> None:
    (event,) = parse_sea(PATH, EXAMPLE).events
    assert event.node_id == "orders:event:OrderPlaced"
    assert (event.log_event, event.topic) == ("order.placed", "orders.order_placed.v1")


# -- contexts ------------------------------------------------------------------------------------


def test_declaration_without_context_is_a_problem_and_no_node() -> None:
    frag = parse('Flow "PlaceOrder"\n  @sds "SDS-041"\n')
    assert messages(frag.problems) == [
        f"{PATH}:1: Flow 'PlaceOrder': no @context before this declaration "
        '(add @context "name" above it)'
    ]
    assert frag.nodes == [] and frag.refs == []


def test_entity_in_domain_needs_no_context() -> None:
    frag = parse("""\
        Entity "Order" in orders
        Entity "VendorV2" v2.0.0
            @replaces "Vendor" v1.0.0
            in procurement
        """)
    assert frag.problems == []
    assert [n.id for n in frag.nodes] == ["orders:entity:Order", "procurement:entity:VendorV2"]
    vendor = frag.nodes[1]
    assert vendor.props == {"version": "v2.0.0", "replaces": '"Vendor" v1.0.0'}


def test_context_can_change_mid_file() -> None:
    frag = parse("""\
        @context "a"
        Flow "One"
        @context "b"
        Flow "Two"
        """)
    assert [n.id for n in frag.nodes] == ["a:flow:One", "b:flow:Two"]


def test_context_must_be_a_string() -> None:
    frag = parse('@context ["a"]\n')
    assert messages(frag.problems) == [f'{PATH}:1: @context must be a context name like "orders"']


# -- annotations ---------------------------------------------------------------------------------


def test_invalid_json_message_names_flow_annotation_and_column() -> None:
    frag = parse("""\
        @context "orders"
        Flow "CancelOrder"
          @budget {"p95_ms": 300, "p99_ms": 800 "error_rate": 0.01}
        """)
    assert messages(frag.problems) == [
        f"{PATH}:3: Flow 'CancelOrder': @budget is not valid JSON: "
        "Expecting ',' delimiter (column 31)"
    ]
    assert frag.problems[0].message.startswith("Flow 'CancelOrder': @budget")
    assert [n.id for n in frag.nodes] == ["orders:flow:CancelOrder"]


def test_multi_line_json_annotation_and_key_lines() -> None:
    frag = parse("""\
        @context "orders"
        Flow "PlaceOrder"
          @runtime {
            "service": "checkout",
            "http": {"method": "post", "route": "/cart/checkout"},
            "bogus": true
          }
          @budget { "p95_ms": 300 }
        """)
    (op,) = frag.operations
    assert op.service == "checkout"
    assert [(b.http_method, b.http_route) for b in op.bindings] == [("POST", "/cart/checkout")]
    assert op.budget is not None and op.budget.p95_ms == 300.0
    # the unknown key is reported where it was written, not at the annotation's first line
    assert [(p.line, p.message) for p in frag.problems] == [
        (
            6,
            "Flow 'PlaceOrder': unknown match key 'bogus' (expected one of span_name, rpc, http, "
            "messaging, log, log_event, metric)",
        )
    ]


def test_unterminated_json_is_reported_at_its_first_line_and_parsing_goes_on() -> None:
    frag = parse("""\
        @context "orders"
        Flow "PlaceOrder"
          @runtime { "service": "checkout",
            "span_name": "x"
          @budget { "p95_ms": 300 }
        Flow "Next"
        """)
    assert messages(frag.problems) == [
        f"{PATH}:3: Flow 'PlaceOrder': @runtime is not valid JSON: '{{' is never closed"
    ]
    assert [n.id for n in frag.nodes] == ["orders:flow:PlaceOrder", "orders:flow:Next"]
    assert frag.operations[0].budget is not None


def test_balanced_multi_line_json_error_names_the_line_within_the_value() -> None:
    frag = parse("""\
        @context "orders"
        Flow "PlaceOrder"
          @attributes {
            "required": ["a"],,
          }
        """)
    (problem,) = frag.problems
    assert problem.line == 3
    assert problem.message.startswith("Flow 'PlaceOrder': @attributes is not valid JSON: ")
    assert "(line 2 column" in problem.message


def test_runtime_must_be_an_object() -> None:
    frag = parse('@context "o"\nFlow "F"\n  @runtime "checkout"\n')
    (problem,) = frag.problems
    assert problem.line == 3
    assert problem.message.startswith("Flow 'F': @runtime must be a JSON object like")


def test_operation_problems_come_from_the_shared_reader_at_the_annotation_line() -> None:
    frag = parse('@context "o"\nFlow "F"\n  @budget {"p95_ms": "fast"}\n  @calls {"a": 1}\n')
    assert sorted((p.line, p.message) for p in frag.problems) == [
        (3, "Flow 'F': 'p95_ms' must be a number, got a string"),
        (4, "Flow 'F': '@calls' must be a list of strings, got a mapping"),
    ]


def test_operation_only_with_runtime_annotations() -> None:
    frag = parse("""\
        @context "cart"
        Flow "GetCart"
          @cqrs { "kind": "query" }
          @aliases ["get cart"]
          @sds "SDS-023"
        """)
    assert frag.operations == []
    assert frag.nodes[0].props == {"kind": "query", "aliases": ["get cart"]}
    assert [r.target for r in frag.refs] == ["SDS-023"]


def test_every_runtime_annotation_creates_an_operation() -> None:
    frag = parse("""\
        @context "o"
        Flow "A"
          @steps ["B", "c:flow:D"]
        Flow "B"
          @deprecated "use A"
        Flow "C"
          @requires_calls ["B"]
          @policies ["no_negative_payment"]
          @aliases ["see"]
        """)
    ops = {op.flow_id: op for op in frag.operations}
    assert ops["o:flow:A"].steps == ("o:flow:B", "c:flow:D")
    assert (ops["o:flow:B"].deprecated, ops["o:flow:B"].deprecated_reason) == (True, "use A")
    assert ops["o:flow:C"].requires_calls == ("o:flow:B",)
    assert ops["o:flow:C"].policies == ("o:policy:no_negative_payment",)
    assert ops["o:flow:C"].aliases == ("see",)
    governed = [r for r in frag.refs if r.edge and r.edge.kind is EdgeKind.GOVERNED_BY]
    assert [(r.what, r.target, r.loc.line) for r in governed] == [
        ("Flow 'C': @policies", "o:policy:no_negative_payment", 8)
    ]
    steps = [r for r in frag.refs if r.what == "Flow 'A': @steps"]
    assert [r.edge for r in steps] == [None, None]


def test_attributes_annotation() -> None:
    frag = parse(
        '@context "o"\nFlow "F"\n  @attributes {"required": ["a.b"], "forbidden": ["c"]}\n'
    )
    (op,) = frag.operations
    assert (op.required_attributes, op.forbidden_attributes) == (("a.b",), ("c",))


def test_sds_accepts_a_bare_id_a_list_and_canonicalises() -> None:
    frag = parse("""\
        @context "o"
        Flow "A"
          @sds SDS-41
        Policy p
          @sds ["SDS-041", "sds-7"]
        """)
    assert [(r.what, r.target) for r in frag.refs] == [
        ("Flow 'A': @sds", "SDS-041"),
        ("Policy 'p': @sds", "SDS-041"),
        ("Policy 'p': @sds", "SDS-007"),
    ]


def test_annotation_without_value_and_wrong_type() -> None:
    frag = parse('@context "o"\nFlow "A"\n  @sds\n  @emits {"x": 1}\n')
    assert sorted((p.line, p.message) for p in frag.problems) == [
        (3, "Flow 'A': @sds is not valid JSON: it has no value"),
        (4, "Flow 'A': @emits must be a list of strings, got a mapping"),
    ]


def test_repeated_annotation_is_a_problem() -> None:
    frag = parse('@context "o"\nFlow "A"\n  @budget {"p95_ms": 1}\n  @budget {"p95_ms": 2}\n')
    assert messages(frag.problems) == [
        f"{PATH}:4: Flow 'A': @budget is given twice (first at line 3)"
    ]
    assert frag.operations[0].budget is not None
    assert frag.operations[0].budget.p95_ms == 1.0


def test_inline_annotations_on_the_declaration_line() -> None:
    frag = parse("""\
        @context "o"
        Flow "A" @cqrs {"kind": "query"} @runtime {"service": "s", "span_name": "GET /a"}
        """)
    (op,) = frag.operations
    assert (op.kind, op.service, op.bindings[0].span_name) == ("query", "s", "GET /a")


def test_sea_annotation_names_for_operation_fields() -> None:
    assert [
        sea_annotation_name_for(k) for k in ("service", "match", "budgets", "kind", "calls")
    ] == [
        "runtime",
        "runtime",
        "budget",
        "cqrs",
        "calls",
    ]


# -- policies, metrics, events -------------------------------------------------------------------


def test_policy_quoted_name_multi_line_expression_and_inline_annotations() -> None:
    frag = parse("""\
        @context "finance"
        Policy "payment_threshold" per Constraint Obligation priority 5 v1.0.0 @tags ["finance"] as:
            forall f in flows where f.resource = "Money":
              f.quantity <= 10000 "USD"
        """)
    assert frag.problems == [] and frag.notes == []
    (policy,) = frag.policies
    assert policy.node_id == "finance:policy:payment_threshold"
    assert policy.assertion == (
        'forall f in flows where f.resource = "Money": f.quantity <= 10000 "USD"'
    )
    assert frag.nodes[0].props["tags"] == ["finance"]
    assert frag.nodes[0].props["version"] == "v1.0.0"


def test_policy_priority_must_be_a_whole_number() -> None:
    frag = parse('@context "o"\nPolicy p priority high\n')
    assert messages(frag.problems) == [
        f"{PATH}:2: Policy 'p': priority must be a whole number, got 'high'"
    ]
    assert frag.policies[0].priority is None


def test_metric_unit_and_range() -> None:
    frag = parse("""\
        @context "o"
        Metric "latency" as: avg(f in flows: f.duration)
          @unit "ms" @range {"min": 0, "max": 250}
          @window 60 "seconds"
        """)
    (metric,) = frag.metrics
    assert (metric.unit, metric.min, metric.max) == ("ms", 0.0, 250.0)
    assert frag.nodes[0].props["window"] == '60 "seconds"'
    assert frag.problems == []


def test_metric_range_type_problems() -> None:
    frag = parse('@context "o"\nMetric "m"\n  @range [0, 1]\nMetric "n"\n  @range {"max": "x"}\n')
    assert sorted((p.line, p.message) for p in frag.problems) == [
        (3, 'Metric \'m\': @range must be a JSON object like {"min": 0, "max": 100}, got a list'),
        (5, "Metric 'n': @range 'max' must be a number, got a string"),
    ]


def test_event_log_as_a_string_and_wrong_shape() -> None:
    frag = parse('@context "o"\nEvent "A"\n  @log "a.b"\nEvent "B"\n  @log 3\n')
    assert [e.log_event for e in frag.events] == ["a.b", None]
    assert [(p.line, p.message) for p in frag.problems] == [
        (5, 'Event \'B\': @log must be a JSON object like {"event_name": "order.placed"}')
    ]


# -- what the loader skips -----------------------------------------------------------------------


def test_unknown_declarations_and_syntax_are_notes_not_problems() -> None:
    frag = parse("""\
        @context "finance"
        Dimension "Currency"
        Unit "USD" of "Currency" factor 1 base "USD"
        Resource "Money" USD in finance
        Instance order_123 of "Order" {
            amount: 150,
            currency: "USD"
        }
        Role "Approver"
        # a comment
        // another comment

        Flow "Pay"
          @wat {"x": 1}
          as: nonsense
        """)
    assert frag.problems == []
    assert messages(frag.notes) == [
        f"{PATH}:2: skipped unknown SEA declaration 'Dimension'",
        f"{PATH}:3: skipped unknown SEA declaration 'Unit'",
        f"{PATH}:4: skipped unknown SEA declaration 'Resource'",
        f"{PATH}:5: skipped unknown SEA declaration 'Instance'",
        f"{PATH}:9: skipped unknown SEA declaration 'Role'",
        f"{PATH}:14: Flow 'Pay': unknown annotation @wat ignored",
        f"{PATH}:15: Flow 'Pay': skipped unrecognised text 'as: nonsense'",
    ]
    assert [n.id for n in frag.nodes] == ["finance:flow:Pay"]


def test_text_outside_any_declaration_is_a_note() -> None:
    frag = parse('  stray indented text\n@context "o"\n@owner "team"\n@foo 1\n')
    assert messages(frag.notes) == [
        f"{PATH}:1: skipped SEA text outside a declaration: 'stray indented text'",
        f"{PATH}:4: skipped annotation @foo: it belongs to no declaration",
    ]
    assert frag.problems == []


def test_missing_name_is_a_problem() -> None:
    frag = parse('@context "o"\nFlow\nPolicy ""\n')
    assert messages(frag.problems) == [
        f"{PATH}:2: Flow: expected a name after 'Flow', e.g. Flow \"Name\"",
        f"{PATH}:3: Policy: expected a name after 'Policy', e.g. Policy \"Name\"",
    ]


def test_keywords_are_case_insensitive_and_crlf_is_accepted() -> None:
    frag = parse_sea(PATH, '@context "o"\r\nFLOW "A"\r\n  @budget {"p95_ms": 5}\r\nflow "B"\r\n')
    assert [n.id for n in frag.nodes] == ["o:flow:A", "o:flow:B"]
    assert frag.operations[0].budget is not None
    assert frag.problems == []


def test_byte_order_mark_does_not_hide_the_first_line() -> None:
    frag = parse_sea(PATH, '\ufeff@context "o"\nFlow "A"\n')
    assert [n.id for n in frag.nodes] == ["o:flow:A"]
    assert frag.problems == [] and frag.notes == []


def test_expression_outside_a_declaration_is_a_note() -> None:
    frag = parse('@context "o"\nas: forall x in flows: (x.quantity > 0)\n')
    assert [n.line for n in frag.notes] == [2]
    assert frag.problems == []


def test_resource_flow_on_the_declaration_line() -> None:
    frag = parse('@context "finance"\nFlow "Money" from "Customer" to "Vendor" quantity 1000.5\n')
    assert frag.nodes[0].props == {"from": "Customer", "to": "Vendor", "quantity": 1000.5}
    assert frag.notes == []


def test_strings_and_comments_do_not_confuse_the_lexer() -> None:
    frag = parse("""\
        @context "o"
        Flow "A"  // trailing comment with @budget {
          @runtime {"service": "s", "http": {"route": "/a//b@c {"}}  // comment
        """)
    assert frag.problems == [] and frag.notes == []
    assert frag.operations[0].bindings[0].http_route == "/a//b@c {"


# -- robustness ----------------------------------------------------------------------------------


def assert_well_formed(frag: SpecFragment, text: str) -> None:
    last = len(text.splitlines()) + 1
    for item in (*frag.problems, *frag.notes):
        assert item.path == PATH
        assert 1 <= item.line <= last, (item, last)
    for loc in (*(n.loc for n in frag.nodes), *(r.loc for r in frag.refs)):
        assert loc.path == PATH and 1 <= loc.line <= last


_PIECES = [
    "\n", "  ", "\t", '"', "\\", "{", "}", "[", "]", ":", ",", "//", "#", "@", "as:", "from ",
    'Flow "A"', "Policy p", 'Metric "m"', 'Event "E"', 'Entity "X" in c', "Dimension", 'in c',
    '@context "c"', "@runtime ", "@budget ", "@calls ", "@sds ", "@range ", "@log ", "@cqrs ",
    '{"service": "s"', '"p95_ms": 1', '["a:flow:B"]', "priority 9", " quantity 1", "\r\n",
    '"span_name": "x"}', "@threshold 5", "1e999", "9" * 50, "[" * 30, "]" * 30, "\ufeff",
]  # fmt: skip


@settings(max_examples=300)
@given(st.text())
def test_never_raises_on_random_text(text: str) -> None:
    assert_well_formed(parse_sea(PATH, text), text)


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_PIECES), max_size=60).map("".join))
def test_never_raises_on_sea_like_text(text: str) -> None:
    assert_well_formed(parse_sea(PATH, text), text)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_never_raises_on_random_bytes(data: bytes) -> None:
    text = data.decode("utf-8", errors="replace")
    assert_well_formed(parse_sea(PATH, text), text)


def test_never_raises_on_any_truncation_of_the_example() -> None:
    source = EXAMPLE + '  @runtime {\n    "service": "x",\n    "rpc": "a.B/C"\n  }\n'
    for end in range(len(source) + 1):
        text = source[:end]
        assert_well_formed(parse_sea(PATH, text), text)


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    text = '@context "o"\nFlow "A"\n  @budget ' + "[" * 100_000 + "]" * 100_000 + "\n"
    frag = parse_sea(PATH, text)
    assert [p.line for p in frag.problems] == [3]
