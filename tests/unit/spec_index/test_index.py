"""Compiling, encoding and holding the runtime index (hand-built graphs, no parsers, no servers)."""

import zlib

import pytest

from sidecar.errors import IndexCorrupt, IndexNotFound
from sidecar.spec.graph import SpecGraph
from sidecar.spec.model import (
    Binding,
    Budget,
    Location,
    NodeKind,
    OperationSpec,
    SpecFragment,
    SpecNode,
)
from sidecar.spec.validate import validate_graph
from sidecar.spec_index.codec import MAGIC, decode_index, encode_index
from sidecar.spec_index.compile import BASE_ATTRIBUTE_KEYS, compile_index
from sidecar.spec_index.holder import IndexHolder
from sidecar.spec_index.index import RuntimeIndex
from sidecar.testing import InMemoryIndexCache


def flow(name: str, path: str, *bindings: Binding, **kw: object) -> SpecFragment:
    fid = f"shop:flow:{name}"
    loc = Location(path, 2)
    return SpecFragment(
        path,
        nodes=[SpecNode(fid, NodeKind.FLOW, loc, title=name, context="shop", origin="manifest")],
        operations=[
            OperationSpec(
                fid,
                "shop",
                loc,
                "manifest",
                bindings=bindings,
                field_locs={"match": Location(path, 4)},
                **kw,
            )
        ],  # type: ignore[arg-type]
        services=[("shopsvc", "shop", Location(path, 1))],
    )


def build(*frags: SpecFragment, spec_hash: str = "h1"):
    g = SpecGraph()
    for f in frags:
        g.add_fragment(f)
    g.finish()
    problems = validate_graph(g)
    index, compile_problems = compile_index(g, spec_hash)
    return index, problems + compile_problems


def test_bindings_scoped_by_context_services() -> None:
    index, problems = build(
        flow(
            "Buy",
            "a.yaml",
            Binding(span_name="Shop/Buy", rpc_service="Shop", rpc_method="Buy"),
            budget=Budget(p95_ms=100),
            required_attributes=("app.order.id",),
        ),
        flow("Home", "b.yaml", Binding(http_method="GET", http_route="/")),
    )
    assert problems == []
    assert index.bindings.span == {"shopsvc": {"Shop/Buy": "shop:flow:Buy"}}
    assert index.bindings.rpc == {"Shop/Buy": "shop:flow:Buy"}
    assert index.bindings.http == {"shopsvc": {"GET /": "shop:flow:Home"}}
    assert index.operations["shop:flow:Buy"].services == ("shopsvc",)
    assert index.operations["shop:flow:Buy"].budget is not None
    assert index.operations["shop:flow:Buy"].budget.p95_ms == 100
    assert index.services == {"shopsvc": "shop"}
    assert "app.order.id" in index.attribute_keys
    assert set(BASE_ATTRIBUTE_KEYS) <= set(index.attribute_keys)
    assert index.check() == []


def test_two_flows_bound_to_one_span_name_is_a_problem() -> None:
    _, problems = build(
        flow("Buy", "a.yaml", Binding(span_name="Shop/Buy")),
        flow("Purchase", "b.yaml", Binding(span_name="Shop/Buy")),
    )
    assert [str(p) for p in problems] == [
        "b.yaml:4: span_name 'Shop/Buy' on service 'shopsvc' is bound to 'shop:flow:Purchase' "
        "here but to 'shop:flow:Buy' at a.yaml:4; a binding must name one spec node"
    ]


def sample_index(spec_hash: str = "h1") -> RuntimeIndex:
    index, problems = build(
        flow("Buy", "a.yaml", Binding(span_name="Shop/Buy")), spec_hash=spec_hash
    )
    assert problems == []
    return index


def test_codec_round_trip() -> None:
    index = sample_index()
    assert decode_index(encode_index(index), expected_hash="h1") == index


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b"XXXX" + b[4:], "not a runtime index payload"),
        (lambda b: b[:-7], "truncated"),
        (lambda b: MAGIC + b"not zlib at all", "does not inflate"),
        (lambda b: MAGIC + zlib.compress(b'{"spec_hash": "h1"}'), "does not match the schema"),
    ],
)
def test_codec_refuses_damaged_payloads(mutate, message: str) -> None:
    with pytest.raises(IndexCorrupt, match=message):
        decode_index(mutate(encode_index(sample_index())))


def test_codec_refuses_hash_mismatch() -> None:
    with pytest.raises(IndexCorrupt, match="carries hash"):
        decode_index(encode_index(sample_index("h1")), expected_hash="h2")


def test_codec_refuses_inconsistent_index() -> None:
    index = sample_index()
    broken = index.model_copy(update={"nodes": {}})
    with pytest.raises(IndexCorrupt, match="binding points at unknown node"):
        decode_index(encode_index(broken))


def test_holder_swaps_only_good_indexes() -> None:
    cache = InMemoryIndexCache()
    holder = IndexHolder(sample_index("h1"))
    seen: list[str] = []
    holder.subscribe(lambda ix: seen.append(ix.spec_hash))
    cache.publish(sample_index("h2"))
    assert holder.offer(lambda: cache.load("h2"), "test") is True
    assert holder.current.spec_hash == "h2"
    assert holder.offer(lambda: cache.load("missing"), "test") is False
    assert holder.current.spec_hash == "h2"
    assert holder.reload_failures == 1
    assert holder.last_error is not None and "missing" in holder.last_error
    assert holder.offer(lambda: cache.load("h2"), "test") is False  # already current
    assert seen == ["h2"]


def test_in_memory_cache_reports_nothing_published() -> None:
    with pytest.raises(IndexNotFound):
        InMemoryIndexCache().load_current()
