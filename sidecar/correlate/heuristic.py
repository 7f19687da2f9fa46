"""Heuristic correlation of shapes no deterministic rule matched: name similarity + context.

Candidates are the index's operations, each described by its name, aliases and bound names
(span names, ``Service/Method``, ``METHOD /route``); features are fitted once per index
version. A query is the item's name plus its rpc and http fields. The score of a pair is

    w_tok * cosine(tokens) + w_tri * cosine(char trigrams) + agree * [same bounded context]

and the best candidate is accepted when its name score is high (>= 0.75) or clearly ahead of
the runner-up (margin >= 0.10 over a 0.35 floor). On the labelled generator, endpoints the spec
does not declare share package and service tokens with declared ones and score up to 0.49 with
margins of 0.05-0.07, while renamed spans of declared operations score >= 0.79 or lead by
the runner-up (margin >= 0.10 over a 0.35 floor). On the labelled generator, endpoints the
steps of the operation that encloses them (producers are the sending side of a message,
like clients) and take its node from the call graph (on the
Online Boutique recording, name matching sent ``ListProducts``' internal ``ParseCatalog``
step to ``GetProduct``).
Confidence grows with the score and with the margin over the runner-up; the weights and
thresholds are calibrated on the labelled generator (docs/correlation.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sidecar.correlate.deterministic import (
    HTTP_METHOD,
    HTTP_ROUTE,
    KIND,
    NAME,
    RPC_METHOD,
    RPC_SERVICE,
    SERVICE,
    SIGNAL,
    Lookups,
)
from sidecar.correlate.features import NameFeatures, NameSpace
from sidecar.correlate.kernels import combine, cosine_csr, top2
from sidecar.correlate.result import Correlation
from sidecar.correlate.shapes import Shape
from sidecar.evidence.annotations import MatchType
from sidecar.evidence.batch import Signal, SpanKind

CHUNK = 512
#: Span kinds that are steps of an enclosing operation, linked through the call graph.
_STEP_KINDS = frozenset({int(SpanKind.INTERNAL), int(SpanKind.CLIENT), int(SpanKind.PRODUCER)})


@dataclass(frozen=True, slots=True)
class HeuristicWeights:
    """Weights and thresholds of the heuristic score (see docs/correlation.md)."""

    tokens: float = 0.5
    trigrams: float = 0.5
    context: float = 0.15
    #: Accept a candidate whose name score is at least this ...
    accept_score: float = 0.75
    #: ... or that beats the runner-up's name score by at least this (with a score floor).
    accept_margin: float = 0.10
    floor: float = 0.35


class NameMatcher:
    """Scores unmatched span shapes against every operation of the index (numba kernels)."""

    def __init__(self, weights: HeuristicWeights | None = None) -> None:
        self.weights = weights or HeuristicWeights()
        self._spec_hash = ""
        self._ops: list[str] = []
        self._space: NameSpace | None = None
        self._cands: NameFeatures | None = None
        self._c_group = np.zeros(0, np.int32)
        self._contexts: dict[str, int] = {}

    def _fit(self, lookups: Lookups) -> None:
        index = lookups.index
        if index.spec_hash == self._spec_hash:
            return
        names: dict[str, list[str]] = {fid: [op.name, *op.aliases]
                                       for fid, op in sorted(index.operations.items())}  # fmt: skip
        for by_name in index.bindings.span.values():
            for span_name, fid in by_name.items():
                names.get(fid, []).append(span_name)
        for rpc, fid in index.bindings.rpc.items():
            names.get(fid, []).append(rpc)
        for routes in index.bindings.http.values():
            for route, fid in routes.items():
                names.get(fid, []).append(route)
        self._ops = list(names)
        contexts = sorted({op.context for op in index.operations.values()})
        self._contexts = {c: i for i, c in enumerate(contexts)}
        self._c_group = np.array([self._contexts[index.operations[f].context] for f in self._ops],
                                 np.int32)  # fmt: skip
        if self._ops:
            self._space, self._cands = NameSpace.fit([names[f] for f in self._ops])
        self._spec_hash = index.spec_hash

    def match(self, shapes: Sequence[Shape], lookups: Lookups) -> list[Correlation]:
        """One correlation per shape; unmatched ones carry only their service's context."""
        self._fit(lookups)
        services = lookups.index.services
        out = [Correlation(context=services.get(s[SERVICE], "")) for s in shapes]
        todo = [
            i for i, s in enumerate(shapes)
            if int(s[SIGNAL]) == Signal.SPAN and int(s[KIND]) not in _STEP_KINDS
        ]  # fmt: skip
        if not todo or self._space is None or self._cands is None:
            return out
        for lo in range(0, len(todo), CHUNK):
            part = todo[lo : lo + CHUNK]
            self._score([shapes[i] for i in part], part, out, lookups)
        return out

    def _score(self, shapes: list[Shape], rows: list[int], out: list[Correlation],
               lookups: Lookups) -> None:  # fmt: skip
        assert self._space is not None and self._cands is not None
        w = self.weights
        docs = [[s[NAME]]
                + ([f"{s[RPC_SERVICE]}/{s[RPC_METHOD]}"] if s[RPC_METHOD] else [])
                + ([f"{s[HTTP_METHOD]} {s[HTTP_ROUTE]}"] if s[HTTP_ROUTE] else [])
                for s in shapes]  # fmt: skip
        q = self._space.transform(docs)
        scores = np.stack([cosine_csr(q.tokens.arrays, self._cands.tokens.arrays),
                           cosine_csr(q.trigrams.arrays, self._cands.trigrams.arrays)])  # fmt: skip
        ctx = lookups.index.services
        q_group = np.array([self._contexts.get(ctx.get(s[SERVICE], ""), -1) for s in shapes],
                           np.int32)  # fmt: skip
        name = combine(scores, (w.tokens, w.trigrams))
        total = combine(scores, (w.tokens, w.trigrams), q_group=q_group, c_group=self._c_group,
                        agree=w.context)  # fmt: skip
        best_idx, _, _ = top2(total)
        name_idx, name_best, name_second = top2(name)
        for k, shape in enumerate(shapes):
            i = int(best_idx[k])
            if i < 0:
                continue
            score = float(name[k, i])
            # The margin is measured on names alone: context agreement decides between near
            # ties but must not make a weak name look distinctive.
            runner_up = float(name_second[k]) if int(name_idx[k]) == i else float(name_best[k])
            margin = score - runner_up
            if not (score >= w.accept_score or (score >= w.floor and margin >= w.accept_margin)):
                continue
            node = self._ops[i]
            agrees = q_group[k] >= 0 and q_group[k] == self._c_group[i]
            rules = ("heuristic.name", "heuristic.context") if agrees else ("heuristic.name",)
            conf = confidence(score, runner_up)
            ctx_name = lookups.context_of(node, shape[SERVICE])
            out[rows[k]] = Correlation(node, ctx_name, MatchType.HEURISTIC, conf, rules)


def confidence(best: float, second: float) -> float:
    """Confidence from the best score and its margin over the runner-up, in [0, 1].

    sqrt(score) rewards a clear match, and a small margin (two candidates nearly tied) scales
    it down: ``sqrt(best) * min(1, 0.5 + (best - second))``.
    """
    return float(min(1.0, np.sqrt(max(best, 0.0)) * min(1.0, 0.5 + (best - second))))
