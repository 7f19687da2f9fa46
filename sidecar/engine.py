"""The engine: one batch in, annotations and findings out. Same code for replay and gRPC.

decode (elsewhere) -> correlate -> item and trace checks -> classify -> annotations.
Rate checks over sliding windows and the learned baseline run on the correlated rows too
(``sidecar.drift.windows`` / ``baseline``) and add their findings here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sidecar.correlate.correlator import CorrelationColumns, Correlator, HeuristicMatcher
from sidecar.correlate.heuristic import NameMatcher
from sidecar.drift.check_memo import CheckMemo
from sidecar.drift.classify import Drift, combine
from sidecar.drift.privacy_check import PiiScanner, pii_exposure
from sidecar.drift.rates import RateTracker
from sidecar.drift.span_checks import ITEM_CHECKS, CheckContext, Finding
from sidecar.drift.trace_checks import call_edges, call_findings, retried_calls
from sidecar.evidence.annotations import Annotations, evidence_ids
from sidecar.evidence.batch import I32, I64, EvidenceBatch
from sidecar.spec_index.index import RuntimeIndex

_EMPTY_RULES = (np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0, np.int64))


@dataclass(slots=True)
class EngineResult:
    """What the engine made of one batch."""

    annotations: Annotations
    correlation: CorrelationColumns
    findings: list[Finding]


class Engine:
    """Correlates and classifies batches against the current index."""

    def __init__(self, index: RuntimeIndex, *, heuristic: HeuristicMatcher | None = None,
                 shape_cache: int = 100_000, rates: RateTracker | None = None) -> None:  # fmt: skip
        matcher = heuristic if heuristic is not None else NameMatcher()
        self.correlator = Correlator(index, heuristic=matcher, cache_size=shape_cache)
        self.pii = PiiScanner()
        self.rates = rates if rates is not None else RateTracker()
        self.memo = CheckMemo()
        #: (number of rule sets, label codes of their rules, their lengths, their starts).
        self._rule_table: tuple[int, I32, I64, I64] = (-1, *_EMPTY_RULES)

    @property
    def index(self) -> RuntimeIndex:
        """The index in use."""
        return self.correlator.index

    def set_index(self, index: RuntimeIndex) -> None:
        """Switch index versions (hot reload)."""
        self.correlator.set_index(index)

    def process(self, batch: EvidenceBatch) -> EngineResult:
        """Correlate, check and classify one batch."""
        cols = self.correlator.correlate(batch)
        ctx = CheckContext(batch, cols, self.correlator, self.memo)
        findings = [check(ctx) for check in ITEM_CHECKS]
        findings.append(pii_exposure(ctx, self.pii))
        edges = call_edges(ctx)
        calls, explained = call_findings(ctx, edges)
        retried, storms = retried_calls(ctx, edges)
        findings += [*calls, storms]
        findings += self.rates.check(ctx, exclude=retried)
        drift = combine(findings, len(batch), explained)
        return EngineResult(self._annotations(batch, cols, drift), cols, findings)

    def _annotations(
        self, batch: EvidenceBatch, cols: CorrelationColumns, drift: Drift
    ) -> Annotations:
        c = self.correlator
        # Rule sets are few; expand them to per-row ragged arrays with one vectorised gather.
        if self._rule_table[0] != len(c.rule_sets):
            table = [c.labels.code(r) for rules in c.rule_sets for r in rules]
            set_len = np.array([len(rules) for rules in c.rule_sets], np.int64)
            set_start = np.zeros(len(set_len), np.int64)
            np.cumsum(set_len[:-1], out=set_start[1:])
            self._rule_table = (len(c.rule_sets), np.asarray(table, np.int32), set_len, set_start)
        _, codes, set_len, set_start = self._rule_table
        lengths = set_len[cols.rule_set]
        offsets = np.zeros(len(batch) + 1, np.int64)
        np.cumsum(lengths, out=offsets[1:])
        gather = np.repeat(set_start[cols.rule_set] - offsets[:-1], lengths)
        gather += np.arange(int(offsets[-1]), dtype=np.int64)
        flat = codes[gather] if len(codes) else np.zeros(0, np.int32)
        return Annotations(
            labels=c.labels, spec_node=cols.node, context=cols.context, match_type=cols.match,
            confidence=cols.confidence, status=cols.status, drift_score=drift.score,
            drift_level=drift.level, drift_class=drift.cls, drift_kinds=drift.kinds,
            rule_offsets=offsets,
            rule_codes=flat, evidence_id=evidence_ids(batch),
            spec_version=self.index.spec_hash,
        )  # fmt: skip
