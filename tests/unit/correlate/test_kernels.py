"""numba scoring kernels against their plain-Python references, and name ranking end to end."""

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
