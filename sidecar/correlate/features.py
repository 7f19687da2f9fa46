"""Name features for heuristic correlation: word tokens, character n-grams, TF-IDF CSR rows.

A telemetry name (``checkout.placeOrder``, ``POST /api/v2/orders/place``,
``grpc.hipstershop.CurrencyService/Convert``) and a spec operation (its name, aliases and bound
span/rpc/http names) are turned into the same two feature kinds:

* **tokens**: lowercase words split at punctuation, camelCase/acronym and letter/digit
  boundaries, without identifiers, versions and :data:`STOP_WORDS`, with :data:`SYNONYMS`
  folded; good at matching renamings that keep the words (``place_order``);
* **character trigrams** of those words with boundary markers (:func:`char_ngrams`), good at
  partial words, glued words (``aditems``) and derivations (``conversion``/``convert``).

Each kind has its own :class:`FeatureSpace` so the engine can weight the two cosines.

**Ids: a vocabulary, not hashing.** The space is fitted on the candidates of one index version
(the IDF needs that corpus anyway, so hashing's only advantage, state-free ids, buys nothing).
A vocabulary gives dense, collision-free int32 ids in ``[0, n_features)`` and is deterministic
for a given candidate order. Query features the candidates never use cannot match anything;
they are left out of the stored row but still count in its L2 norm, so a query with many
unexplained words scores lower against every candidate instead of looking like a perfect match.

**Weights: sublinear TF times smoothed IDF**, ``(1 + ln tf) * (ln((1 + N) / (1 + df)) + 1)``
with N candidates and df the candidates using the feature (unknown query features get the
largest IDF, df = 0). Words every operation shares (``hipstershop``, ``service``, ``get``) weigh
little; a candidate repeating its name in aliases and bindings gains a little, not linearly.
Rows are L2-normalised, so the dot product of two rows is their cosine.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
F32 = npt.NDArray[np.float32]

#: One text, or several texts that make one document (an operation's name, aliases, bindings).
Doc = str | Sequence[str]
Analyzer = Callable[[str], list[str]]

#: Words dropped from every name. Only words that describe *how* an operation is reached or
#: how its code is organised, never what it does, and that are (nearly) never domain words:
#: transport and protocol markers (``grpc.``, ``/api/``, ``https``), code-structure suffixes
#: (``PlaceOrderHandler``, ``CartController``, ``AddItemAsync``, ``PaymentServiceImpl``,
#: ``CheckoutServicer``) and OpenCensus' ``Recv.`` prefix. Left in on purpose: HTTP methods
#: (``GET /cart`` should prefer ``GetCart``), ``service`` (IDF already makes it weightless
#: when every binding has it, and it is a domain word in some specs), SQL verbs, package names.
STOP_WORDS = frozenset(
    {"grpc", "http", "https", "rpc", "api"}
    | {"handler", "controller", "impl", "async", "servicer"}
    | {"recv"}
)

#: True synonyms in API naming, folded onto one spelling. Kept tiny: a synonym table that
#: guesses (``remove``/``empty``, ``create``/``add``) turns near-misses into confident errors.
#: Plurals are *not* folded: in API names the number is information (``ListProducts`` vs
#: ``GetProduct``, ``GetSupportedCurrencies`` vs ``Convert`` with alias "convert currency"),
#: and the trigrams already link ``product``/``products``. Folding them lowered the ranking
#: margins of the Online Boutique test set (mean 0.49 -> 0.46), so it was taken out.
SYNONYMS = {"fetch": "get", "retrieve": "get"}

_CHUNK = re.compile(r"[^\W_]+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_VERSION = re.compile(r"[vV][0-9]+(?:(?:alpha|beta|rc)[0-9]*)?")
_HEX_ID = re.compile(r"(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8,}")


def tokens(text: str) -> list[str]:
    """Lowercase word tokens of a name (split, stop words dropped, synonyms folded)."""
    out: list[str] = []
    for chunk in _CHUNK.findall(_UUID.sub(" ", text)):
        # Whole chunks that are identifiers, not words: numbers (/orders/123), API versions
        # (v2, v1beta1), long hex ids; they would only make queries look unexplained.
        if chunk.isdigit() or _VERSION.fullmatch(chunk) or _HEX_ID.fullmatch(chunk):
            continue
        words = _CAMEL.findall(chunk) if chunk.isascii() else [chunk]
        for word in words:
            w = word.lower()
            w = SYNONYMS.get(w, w)
            if w not in STOP_WORDS:
                out.append(w)
    return out


def char_ngrams(text: str, n: int = 3) -> list[str]:
    """Character n-grams of each token of ``text``, padded with ``^``/``$`` word boundaries.

    Per token (not across the joined string) so word order does not matter; a padded token
    shorter than ``n`` is one feature by itself.
    """
    out: list[str] = []
    for tok in tokens(text):
        padded = f"^{tok}$"
        if len(padded) <= n:
            out.append(padded)
        else:
            out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


@dataclass(frozen=True, slots=True)
class CsrMatrix:
    """Rows of sparse features: row i owns ``indices``/``data`` [indptr[i]:indptr[i+1]].

    Indices are sorted and unique within a row; rows are L2-normalised (or empty).
    """

    indptr: I64
    indices: I32
    data: F32
    n_cols: int

    @property
    def arrays(self) -> tuple[I64, I32, F32]:
        """The (indptr, indices, data) triple the kernels take."""
        return self.indptr, self.indices, self.data

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return int(self.indptr.shape[0]) - 1

    def row(self, i: int) -> dict[int, float]:
        """One row as {feature id: weight} (for tests and explanations, not the hot path)."""
        lo, hi = int(self.indptr[i]), int(self.indptr[i + 1])
        return dict(zip(self.indices[lo:hi].tolist(), self.data[lo:hi].tolist(), strict=True))


class FeatureSpace:
    """Vocabulary and IDF of one feature kind, fitted on the candidates of one index version."""

    __slots__ = ("_idf", "_oov_idf", "analyzer", "vocabulary")

    def __init__(
        self, analyzer: Analyzer, vocabulary: dict[str, int], idf: list[float], oov_idf: float
    ) -> None:
        self.analyzer = analyzer
        self.vocabulary = vocabulary
        self._idf = idf
        self._oov_idf = oov_idf

    @classmethod
    def fit(cls, docs: Sequence[Doc], analyzer: Analyzer) -> tuple[FeatureSpace, CsrMatrix]:
        """Fit the vocabulary and IDF on candidate documents; return the space and their rows."""
        counts = [_count(doc, analyzer) for doc in docs]
        vocabulary: dict[str, int] = {}
        df: list[int] = []
        for c in counts:
            for feature in c:
                fid = vocabulary.setdefault(feature, len(vocabulary))
                if fid == len(df):
                    df.append(0)
                df[fid] += 1
        n = len(docs)
        idf = [math.log((1 + n) / (1 + d)) + 1.0 for d in df]
        space = cls(analyzer, vocabulary, idf, math.log(1 + n) + 1.0)
        return space, space._rows(counts)

    @property
    def n_features(self) -> int:
        """Number of features (columns of every matrix of this space)."""
        return len(self.vocabulary)

    def transform(self, docs: Sequence[Doc]) -> CsrMatrix:
        """Rows for documents (queries) in this space; unknown features only lower the norm."""
        return self._rows([_count(doc, self.analyzer) for doc in docs])

    def _rows(self, counts: Sequence[Counter[str]]) -> CsrMatrix:
        indptr = np.zeros(len(counts) + 1, np.int64)
        indices: list[int] = []
        data: list[float] = []
        vocab, idf = self.vocabulary, self._idf
        for r, c in enumerate(counts):
            known: list[tuple[int, float]] = []
            norm2 = 0.0
            for feature, tf in c.items():
                fid = vocab.get(feature)
                w = (1.0 + math.log(tf)) * (self._oov_idf if fid is None else idf[fid])
                norm2 += w * w
                if fid is not None:
                    known.append((fid, w))
            known.sort()
            scale = 1.0 / math.sqrt(norm2) if norm2 > 0.0 else 0.0
            indices.extend(fid for fid, _ in known)
            data.extend(w * scale for _, w in known)
            indptr[r + 1] = len(indices)
        return CsrMatrix(
            indptr, np.asarray(indices, np.int32), np.asarray(data, np.float32), self.n_features
        )


def _count(doc: Doc, analyzer: Analyzer) -> Counter[str]:
    texts = [doc] if isinstance(doc, str) else doc
    c: Counter[str] = Counter()
    for text in texts:
        c.update(analyzer(text))
    return c


@dataclass(frozen=True, slots=True)
class NameFeatures:
    """Token and trigram rows of the same documents (the two name-similarity signals)."""

    tokens: CsrMatrix
    trigrams: CsrMatrix


@dataclass(frozen=True, slots=True)
class NameSpace:
    """The token and trigram feature spaces of one index version's candidates."""

    tokens: FeatureSpace
    trigrams: FeatureSpace

    @classmethod
    def fit(cls, candidates: Sequence[Doc]) -> tuple[NameSpace, NameFeatures]:
        """Fit both spaces on candidate documents; return them and the candidates' rows."""
        tok_space, tok_rows = FeatureSpace.fit(candidates, tokens)
        tri_space, tri_rows = FeatureSpace.fit(candidates, char_ngrams)
        return cls(tok_space, tri_space), NameFeatures(tok_rows, tri_rows)

    def transform(self, queries: Sequence[Doc]) -> NameFeatures:
        """Rows of query names (a batch of new shapes) in both spaces."""
        return NameFeatures(self.tokens.transform(queries), self.trigrams.transform(queries))
