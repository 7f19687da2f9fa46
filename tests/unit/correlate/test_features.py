"""Name tokens, character n-grams and TF-IDF feature rows."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidecar.correlate.features import (
    STOP_WORDS,
    SYNONYMS,
    FeatureSpace,
    NameSpace,
    char_ngrams,
    tokens,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # Span names recorded from Online Boutique.
        ("hipstershop.CheckoutService/PlaceOrder", "hipstershop checkout service place order"),
        ("grpc.hipstershop.CurrencyService/Convert", "hipstershop currency service convert"),
        (
            "/hipstershop.EmailService/SendOrderConfirmation",
            "hipstershop email service send order confirmation",
        ),
        ("hipstershop.Frontend/Recv.", "hipstershop frontend"),
        ("SELECT addatabase.aditems", "select addatabase aditems"),
        ("sql.conn.query", "sql conn query"),
        # Renamings of PlaceOrder.
        ("PlaceOrderHandler", "place order"),
        ("place_order", "place order"),
        ("checkout.placeOrder", "checkout place order"),
        ("POST /api/v2/orders/place", "post orders place"),
        ("PLACE-ORDER", "place order"),
        # Acronyms, digits, versions, identifiers.
        ("XMLParser", "xml parser"),
        ("getHTTPResponseCode", "get response code"),
        ("HTTPServer", "server"),
        ("ec2Instances", "ec 2 instances"),
        ("GET /v1beta1/orders/12345/items", "get orders items"),
        ("/orders/3f2a9c1e7b/cancel", "orders cancel"),
        ("/orders/123e4567-e89b-12d3-a456-426614174000", "orders"),
        ("deadbeefCafe", "deadbeef cafe"),
        # Code-structure noise and synonyms.
        ("CartService.AddItemAsync", "cart service add item"),
        ("PaymentServiceImpl.charge", "payment service charge"),
        ("AdService.fetchAds", "ad service get ads"),
        ("retrieveQuote", "get quote"),
        # Not ASCII: kept whole (lowercased), no camel split.
        ("commande.RéglerFacture", "commande réglerfacture"),
        ("", ""),
        ("/-._ ", ""),
    ],
)
def test_tokens(name: str, expected: str) -> None:
    assert tokens(name) == expected.split()


def test_domain_words_are_kept() -> None:
    # Service, HTTP methods and SQL verbs are signal, not noise.
    assert tokens("GET /cart") == ["get", "cart"]
    assert tokens("DeleteServiceRequest") == ["delete", "service", "request"]
    assert tokens("products") == ["products"]  # plurals are information, not folded


_WORD = st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8).filter(
    lambda w: w not in STOP_WORDS and w not in SYNONYMS
)


@given(st.lists(_WORD, min_size=1, max_size=5))
def test_naming_conventions_give_the_same_tokens(words: list[str]) -> None:
    camel = words[0] + "".join(w.capitalize() for w in words[1:])
    pascal = "".join(w.capitalize() for w in words)
    for joined in ("_".join(words), "-".join(words), ".".join(words), "/".join(words), camel):
        assert tokens(joined) == words
    assert tokens(pascal) == words
    assert tokens(" ".join(words).upper()) == words


@given(st.text())
def test_tokens_are_lowercase_words(text: str) -> None:
    for tok in tokens(text):
        assert tok
        assert tok == tok.lower()
        assert tok.isalnum()
        assert tok not in STOP_WORDS


def test_char_ngrams() -> None:
    assert char_ngrams("GetAds") == ["^ge", "get", "et$", "^ad", "ads", "ds$"]
    assert char_ngrams("a") == ["^a$"]
    assert char_ngrams("ab", n=5) == ["^ab$"]
    assert char_ngrams("grpc/") == []
    # Per token, so word order does not matter.
    assert sorted(char_ngrams("order.place")) == sorted(char_ngrams("PlaceOrder"))


CANDIDATES = [
    ["PlaceOrder", "place order", "hipstershop.CheckoutService/PlaceOrder"],
    ["ShipOrder", "hipstershop.ShippingService/ShipOrder"],
    ["GetCart", "hipstershop.CartService/GetCart"],
    [],
]


def norms(m_indptr: np.ndarray, data: np.ndarray) -> list[float]:
    return [
        math.sqrt(float(np.sum(data[a:b].astype(np.float64) ** 2)))
        for a, b in itertools.pairwise(m_indptr)
    ]


def test_candidate_rows_are_normalised_sorted_csr() -> None:
    space, rows = FeatureSpace.fit(CANDIDATES, tokens)
    assert rows.indptr.dtype == np.int64
    assert rows.indices.dtype == np.int32
    assert rows.data.dtype == np.float32
    assert rows.n_rows == len(CANDIDATES)
    assert rows.n_cols == space.n_features == len(space.vocabulary)
    for r in range(rows.n_rows):
        ids = rows.indices[rows.indptr[r] : rows.indptr[r + 1]].tolist()
        assert ids == sorted(set(ids))
    assert norms(rows.indptr, rows.data) == pytest.approx([1.0, 1.0, 1.0, 0.0], abs=1e-6)


def test_idf_weighs_shared_words_less() -> None:
    space, rows = FeatureSpace.fit(CANDIDATES, tokens)
    place_order = rows.row(0)
    v = space.vocabulary
    # "order" is in two candidates, "place" in one; both appear twice in PlaceOrder.
    assert place_order[v["place"]] > place_order[v["order"]]
    # "hipstershop" and "service" are in every bound name: weightless next to the name.
    assert place_order[v["hipstershop"]] < place_order[v["order"]]


def test_unknown_query_words_lower_the_norm_but_are_not_stored() -> None:
    space, _ = FeatureSpace.fit(CANDIDATES, tokens)
    q = space.transform(["place_order", "PlaceOrderWithCoupon", "wholly unknown", ""])
    exact, partly, unknown, empty = norms(q.indptr, q.data)
    assert exact == pytest.approx(1.0, abs=1e-6)
    assert 0.0 < partly < 1.0
    assert unknown == empty == 0.0
    assert set(q.row(1)) == {space.vocabulary["place"], space.vocabulary["order"]}
    assert q.row(2) == {}


def test_fit_is_deterministic_and_documents_may_be_plain_strings() -> None:
    a, rows_a = FeatureSpace.fit(["GetCart", "EmptyCart"], char_ngrams)
    b, rows_b = FeatureSpace.fit([["GetCart"], ["EmptyCart"]], char_ngrams)
    assert a.vocabulary == b.vocabulary
    assert rows_a.row(0) == rows_b.row(0)


def test_empty_candidate_set() -> None:
    space, rows = FeatureSpace.fit([], tokens)
    assert rows.n_rows == 0
    q = space.transform(["GetCart"])
    assert q.n_rows == 1
    assert q.row(0) == {}


def test_name_space_builds_both_kinds() -> None:
    space, cand = NameSpace.fit(CANDIDATES)
    q = space.transform(["place_order"])
    assert cand.tokens.n_rows == cand.trigrams.n_rows == len(CANDIDATES)
    assert q.tokens.n_cols == space.tokens.n_features
    assert q.trigrams.n_cols == space.trigrams.n_features > q.tokens.n_cols
