"""numba kernels against their plain-Python references, and name ranking end to end."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.correlate import kernels
from sidecar.correlate import kernels_reference as reference
from sidecar.correlate.features import NameFeatures, NameSpace

# The first example of each kernel test pays the JIT compile (or the cache load).
KERNEL_SETTINGS = settings(deadline=None)

CsrLists = tuple[list[int], list[int], list[float]]


@st.composite
def csr_pair(draw: st.DrawFn, shuffle: bool = False) -> tuple[CsrLists, CsrLists]:
    """Query and candidate matrices over one feature space: empty rows, zero rows or columns."""
    n_cols = draw(st.integers(0, 12))
    value = st.floats(-1.0, 1.0, width=32)

    def matrix() -> CsrLists:
        indptr, indices, data = [0], [], []
        for _ in range(draw(st.integers(0, 6))):
            cols = draw(st.lists(st.integers(0, max(n_cols - 1, 0)), unique=True)) if n_cols else []
            cols = draw(st.permutations(cols)) if shuffle else sorted(cols)
            indices += cols
            data += [draw(value) for _ in cols]
            indptr.append(len(indices))
        return indptr, indices, data

    return matrix(), matrix()


def arrays(m: CsrLists) -> kernels.Csr:
    return (
        np.asarray(m[0], np.int64),
        np.asarray(m[1], np.int32),
        np.asarray(m[2], np.float32),
    )


@KERNEL_SETTINGS
@given(csr_pair())
def test_cosine_matches_reference(pair: tuple[CsrLists, CsrLists]) -> None:
    q, c = pair
    got = kernels.cosine_csr(arrays(q), arrays(c))
    want = np.asarray(reference.cosine_csr(q, c), np.float64).reshape(len(q[0]) - 1, len(c[0]) - 1)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@KERNEL_SETTINGS
@given(csr_pair(shuffle=True))
def test_cosine_does_not_need_sorted_rows(pair: tuple[CsrLists, CsrLists]) -> None:
    q, c = pair
    want = np.asarray(reference.cosine_csr(q, c)).reshape(len(q[0]) - 1, len(c[0]) - 1)
    np.testing.assert_allclose(kernels.cosine_csr(arrays(q), arrays(c)), want, rtol=1e-5, atol=1e-5)


def score_matrix(k: int | None = None) -> st.SearchStrategy[np.ndarray]:
    # Few distinct values, so ties for first and second place are common.
    value = st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, -0.5]) | st.floats(-2, 2, width=32)
    shape = st.tuples(st.integers(0, 5), st.integers(0, 7))
    return shape.flatmap(
        lambda s: st.lists(
            st.lists(value, min_size=s[1], max_size=s[1]), min_size=s[0], max_size=s[0]
        ).map(lambda rows: np.asarray(rows, np.float32).reshape(s))
    )


@KERNEL_SETTINGS
@given(score_matrix())
def test_top2_matches_reference(scores: np.ndarray) -> None:
    best_idx, best, second = kernels.top2(scores)
    want = reference.top2(scores.tolist())
    assert best_idx.dtype == np.int32
    assert best.dtype == second.dtype == np.float32
    assert (best_idx.tolist(), best.tolist(), second.tolist()) == want


@st.composite
def combine_case(draw: st.DrawFn) -> tuple[np.ndarray, list[float], np.ndarray, np.ndarray, float]:
    k, n_q, n_c = draw(st.integers(1, 3)), draw(st.integers(0, 5)), draw(st.integers(0, 6))
    value = st.floats(-1, 1, width=32)
    flat = draw(st.lists(value, min_size=k * n_q * n_c, max_size=k * n_q * n_c))
    weights = draw(st.lists(st.floats(-1, 1, width=32), min_size=k, max_size=k))
    group = st.integers(-1, 2)
    q_group = np.asarray(draw(st.lists(group, min_size=n_q, max_size=n_q)), np.int32)
    c_group = np.asarray(draw(st.lists(group, min_size=n_c, max_size=n_c)), np.int32)
    agree = draw(st.floats(-1, 1, width=32))
    scores = np.asarray(flat, np.float32).reshape(k, n_q, n_c)
    return scores, weights, q_group, c_group, agree


@KERNEL_SETTINGS
@given(combine_case())
def test_combine_matches_reference(
    case: tuple[np.ndarray, list[float], np.ndarray, np.ndarray, float],
) -> None:
    scores, weights, q_group, c_group, agree = case
    got = kernels.combine(scores, weights, q_group=q_group, c_group=c_group, agree=agree)
    want = reference.combine(scores.tolist(), weights, q_group.tolist(), c_group.tolist(), agree)
    want_array = np.asarray(want, np.float64).reshape(scores.shape[1:])
    np.testing.assert_allclose(got, want_array, rtol=1e-5, atol=1e-5)


def test_combine_writes_into_out_even_over_its_input() -> None:
    rng = np.random.default_rng(7)
    stack = rng.random((2, 3, 4), dtype=np.float32)
    want = kernels.combine(stack, [0.25, 0.75], agree=0.5)  # no groups: no bonus
    np.testing.assert_allclose(want, 0.25 * stack[0] + 0.75 * stack[1], rtol=1e-6)
    out = kernels.combine(stack, [0.25, 0.75], out=stack[0])
    assert out.base is stack or out is stack[0] or np.shares_memory(out, stack)
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_cosine_reuses_out() -> None:
    q = arrays(([0, 1], [0], [1.0]))
    out = np.full((1, 1), 9.0, np.float32)
    assert kernels.cosine_csr(q, q, out=out) is out
    assert out.tolist() == [[1.0]]


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (([1, 1], [0], [1.0]), "start at 0"),
        (([0, 2, 1], [0, 1], [1.0, 1.0]), "non-decreasing"),
        (([0, 1], [0, 1], [1.0, 1.0]), "end at len"),
        (([0, 1], [-3], [1.0]), "negative"),
        (([0, 2], [0, 1], [1.0]), "differ in length"),
    ],
)
def test_malformed_csr_is_rejected(matrix: CsrLists, message: str) -> None:
    good = arrays(([0, 1], [0], [1.0]))
    with pytest.raises(ValueError, match=message):
        kernels.cosine_csr(arrays(matrix), good)
    with pytest.raises(ValueError, match=message):
        kernels.cosine_csr(good, arrays(matrix))


def test_bad_shapes_are_rejected() -> None:
    q = arrays(([0, 1], [0], [1.0]))
    with pytest.raises(ValueError, match="out must be"):
        kernels.cosine_csr(q, q, out=np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        kernels.top2(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="3-D"):
        kernels.combine(np.zeros((2, 2), np.float32), [1.0])
    with pytest.raises(ValueError, match="weights"):
        kernels.combine(np.zeros((2, 1, 1), np.float32), [1.0])
    with pytest.raises(ValueError, match="q_group"):
        kernels.combine(np.zeros((1, 2, 1), np.float32), [1.0], q_group=np.zeros(3, np.int32))


# --- Ranking: renamed Online Boutique span names against its operations ---------------------

#: (operation, aliases, bound span/rpc names) as a spec and its manifest bindings declare them.
OPERATIONS = [
    ("ListProducts", ["list products", "browse catalog"], ["ProductCatalogService/ListProducts"]),
    ("GetProduct", ["product details"], ["ProductCatalogService/GetProduct"]),
    ("SearchProducts", ["search catalog"], ["ProductCatalogService/SearchProducts"]),
    ("GetCart", ["view cart"], ["CartService/GetCart"]),
    ("AddItem", ["add to cart"], ["CartService/AddItem"]),
    ("EmptyCart", ["clear cart"], ["CartService/EmptyCart"]),
    ("Convert", ["convert currency"], ["CurrencyService/Convert"]),
    (
        "GetSupportedCurrencies",
        ["supported currencies"],
        ["CurrencyService/GetSupportedCurrencies"],
    ),
    ("Charge", ["charge card", "payment"], ["PaymentService/Charge"]),
    ("GetQuote", ["shipping quote"], ["ShippingService/GetQuote"]),
    ("ShipOrder", ["ship order"], ["ShippingService/ShipOrder"]),
    ("PlaceOrder", ["place order", "checkout"], ["CheckoutService/PlaceOrder"]),
    ("SendOrderConfirmation", ["order confirmation email"], ["EmailService/SendOrderConfirmation"]),
    ("GetAds", ["get ads", "advertisement"], ["AdService/GetAds"]),
    ("ListRecommendations", ["recommend products"], ["RecommendationService/ListRecommendations"]),
]

#: Names no binding matches (other instrumentation, refactorings, REST facades) -> operation.
RENAMED = [
    ("PlaceOrderHandler", "PlaceOrder"),
    ("place_order", "PlaceOrder"),
    ("checkout.placeOrder", "PlaceOrder"),
    ("POST /api/v2/orders/place", "PlaceOrder"),
    ("POST /cart/checkout", "PlaceOrder"),
    ("grpc.hipstershop.CurrencyService/Convert", "Convert"),
    ("currency_conversion", "Convert"),
    ("/hipstershop.EmailService/SendOrderConfirmation", "SendOrderConfirmation"),
    ("send_order_confirmation_email", "SendOrderConfirmation"),
    ("Sent.hipstershop.CartService/GetCart", "GetCart"),
    ("GetCartAsync", "GetCart"),
    ("GET /cart", "GetCart"),
    ("CartService.AddItemAsync", "AddItem"),
    ("POST /cart/empty", "EmptyCart"),
    ("EmptyCartAsync", "EmptyCart"),
    ("charge_card", "Charge"),
    ("PaymentServiceImpl.charge", "Charge"),
    ("get_shipping_quote", "GetQuote"),
    ("shipping.ship_order", "ShipOrder"),
    ("GET /product/{id}", "GetProduct"),
    ("catalog.searchProducts", "SearchProducts"),
    ("product-catalog list_products", "ListProducts"),
    ("GET /api/currencies", "GetSupportedCurrencies"),
    ("currency.getSupportedCurrencies", "GetSupportedCurrencies"),
    ("AdService.fetchAds", "GetAds"),
    ("RecommendationService.list_recommendations", "ListRecommendations"),
    ("get_recommendations", "ListRecommendations"),
]

#: Token and trigram cosines weigh the same: neither is tuned to this set.
WEIGHTS = [0.5, 0.5]
MIN_MARGIN = 0.05


def score(queries: NameFeatures, candidates: NameFeatures) -> np.ndarray:
    n_q, n_c = queries.tokens.n_rows, candidates.tokens.n_rows
    stack = np.empty((2, n_q, n_c), np.float32)
    kernels.cosine_csr(queries.tokens.arrays, candidates.tokens.arrays, out=stack[0])
    kernels.cosine_csr(queries.trigrams.arrays, candidates.trigrams.arrays, out=stack[1])
    return kernels.combine(stack, WEIGHTS)


@pytest.fixture(scope="module")
def ranking() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    docs = [
        [op, *aliases, *(f"hipstershop.{b}" for b in bound)] for op, aliases, bound in OPERATIONS
    ]
    space, candidates = NameSpace.fit(docs)
    return kernels.top2(score(space.transform([q for q, _ in RENAMED]), candidates))


@pytest.mark.parametrize(("i", "query", "expected"), [(i, *r) for i, r in enumerate(RENAMED)])
def test_renamed_span_ranks_its_operation_first(
    ranking: tuple[np.ndarray, np.ndarray, np.ndarray], i: int, query: str, expected: str
) -> None:
    best_idx, best, second = ranking
    top = OPERATIONS[best_idx[i]][0]
    assert (top, query) == (expected, query)
    assert best[i] - second[i] >= MIN_MARGIN, f"{query}: margin {best[i] - second[i]:.3f}"


def test_context_agreement_breaks_a_name_tie() -> None:
    # "cart" alone is as close to ReadCart as to DropCart; the item's service context decides.
    docs = [["ReadCart"], ["DropCart"], ["Convert"]]
    space, candidates = NameSpace.fit(docs)
    scores = score(space.transform(["cart"]), candidates)
    _, best, second = kernels.top2(scores)
    assert best[0] == pytest.approx(second[0])
    boosted = kernels.combine(
        scores[np.newaxis],
        [1.0],
        q_group=np.array([1], np.int32),
        c_group=np.array([0, 1, 2], np.int32),
        agree=0.1,
    )
    best_idx, best, second = kernels.top2(boosted)
    assert best_idx[0] == 1
    assert best[0] - second[0] == pytest.approx(0.1, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 40), max_size=60),
    st.lists(st.integers(0, 45), max_size=60),
)
def test_join_rows_matches_reference(keys: list[int], probes: list[int]) -> None:
    got = kernels.join_rows(np.array(keys, np.uint64), np.array(probes, np.uint64))
    assert got.tolist() == reference.join_rows(keys, probes)


def test_join_rows_large_random_keys() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(1, 2**63, 50_000, dtype=np.uint64)
    probes = np.concatenate([keys[::7], rng.integers(1, 2**63, 1000, dtype=np.uint64)])
    got = kernels.join_rows(keys, probes)
    assert got.tolist() == reference.join_rows(keys.tolist(), probes.tolist())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1) | st.integers(0, 12), max_size=80))
def test_unique_rows_matches_reference(keys: list[int]) -> None:
    first, inverse = kernels.unique_rows(np.array(keys, np.uint64))
    assert (first.tolist(), inverse.tolist()) == reference.unique_rows(keys)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5), max_size=80))
def test_unique_rows_orders_signed_keys(keys: list[int]) -> None:
    first, inverse = kernels.unique_rows(np.array(keys, np.int64))
    assert (first.tolist(), inverse.tolist()) == reference.unique_rows(keys)


def test_unique_rows_is_numpy_unique() -> None:
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 500, 20_000).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    got_first, got_inverse = kernels.unique_rows(keys)
    assert np.array_equal(got_first, first) and np.array_equal(got_inverse, inverse)


def test_unique_rows_many_distinct_keys() -> None:
    # Tens of thousands of groups: the table doubles many times while rows are grouped.
    rng = np.random.default_rng(11)
    keys = rng.integers(0, 2**64 - 1, 30_000, dtype=np.uint64, endpoint=True)
    keys = np.concatenate([keys, keys[::3], rng.integers(0, 40, 5000).astype(np.uint64)])
    first, inverse = kernels.unique_rows(keys)
    assert (first.tolist(), inverse.tolist()) == reference.unique_rows(keys.tolist())


def test_unique_rows_rejects_other_keys() -> None:
    with pytest.raises(ValueError):
        kernels.unique_rows(np.zeros(3, np.int32))
    with pytest.raises(ValueError):
        kernels.unique_rows(np.zeros((2, 2), np.uint64))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 30).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(0, 2**31 - 1), min_size=n, max_size=n), max_size=5
        ).map(lambda cols: (n, cols))
    ),
)
def test_mix_columns_matches_reference(seed: int, case: tuple[int, list[list[int]]]) -> None:
    n, columns = case
    got = kernels.mix_columns(seed, [np.array(c, np.int32) for c in columns], n)
    assert got.tolist() == reference.mix_columns(seed, columns, n)


def test_mix_columns_takes_unsigned_64_bit_columns() -> None:
    rng = np.random.default_rng(9)
    columns = [rng.integers(0, 2**64 - 1, 100, dtype=np.uint64) for _ in range(3)]
    got = kernels.mix_columns(7, columns, 100)
    assert got.tolist() == reference.mix_columns(7, [c.tolist() for c in columns], 100)
    with pytest.raises(ValueError):
        kernels.mix_columns(7, [np.zeros(3, np.int32)], 4)


@st.composite
def inherit_case(
    draw: st.DrawFn,
) -> tuple[list[int], list[bool], list[int], list[int], list[float]]:
    n = draw(st.integers(1, 30))
    parents = draw(st.lists(st.integers(-1, n - 1), min_size=n, max_size=n))
    node = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    context = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
    conf = [float(np.float32(c)) for c in draw(st.lists(st.floats(0, 1), min_size=n, max_size=n))]
    wants = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    todo = [w and node[r] == 0 and parents[r] >= 0 for r, w in enumerate(wants)]
    return parents, todo, node, context, conf


@settings(max_examples=300, deadline=None)
@given(inherit_case(), st.integers(0, 4))
def test_inherit_nodes_matches_reference(
    case: tuple[list[int], list[bool], list[int], list[int], list[float]], depth: int
) -> None:
    parents, todo, node, context, conf = case
    cols = (np.array(node, np.int32), np.array(context, np.int32), np.array(conf, np.float32))
    done = kernels.inherit_nodes(np.array(parents, np.int64), np.array(todo, np.bool_), cols,
                                 factor=0.8, max_depth=depth)  # fmt: skip
    expected = reference.inherit_nodes(parents, todo, (node, context, conf), factor=0.8,
                                       max_depth=depth)  # fmt: skip
    assert done.tolist() == expected
    assert cols[0].tolist() == node and cols[1].tolist() == context
    assert cols[2].tolist() == conf


def test_inherit_nodes_rejects_rows_without_parent() -> None:
    cols = (np.zeros(2, np.int32), np.zeros(2, np.int32), np.zeros(2, np.float32))
    with pytest.raises(ValueError):
        kernels.inherit_nodes(np.array([-1, 0]), np.array([True, False]), cols, factor=0.8,
                              max_depth=3)  # fmt: skip
