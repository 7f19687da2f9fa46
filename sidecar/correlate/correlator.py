"""Correlating a whole batch: shapes once, results broadcast, then the cross-item joins."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from sidecar.correlate.deterministic import SERVICE, Lookups, resolve
from sidecar.correlate.joins import SpanMemory, inheriting_rows, span_keys
from sidecar.correlate.result import Correlation
from sidecar.correlate.row_kernels import inherit_nodes, join_rows
from sidecar.correlate.shapes import Shape, ShapeCache, shapes_of, unique_shapes
from sidecar.evidence.annotations import CorrelationStatus, MatchType
from sidecar.evidence.batch import EvidenceBatch, Signal, StringPool
from sidecar.spec_index.index import RuntimeIndex

#: Below this confidence a correlation is kept but marked partial.
OK_CONFIDENCE = 0.70
#: Confidence kept when a link is inherited through a join (log -> span, child -> parent).
JOIN_FACTOR = {"join.span": 0.98, "join.exemplar": 0.95, "graph.parent": 0.80}
_MAX_DEPTH = 32


class HeuristicMatcher(Protocol):
    """Scores shapes no deterministic rule matched (numba kernels behind it)."""

    def match(self, shapes: Sequence[Shape], lookups: Lookups) -> list[Correlation]:
        """One correlation per shape (NO_MATCH-like when nothing is similar enough)."""
        ...


@dataclass(slots=True)
class CorrelationColumns:
    """Per-row correlation results; strings are codes into the correlator's ``labels``."""

    node: npt.NDArray[np.int32]
    context: npt.NDArray[np.int32]
    match: npt.NDArray[np.uint8]
    confidence: npt.NDArray[np.float32]
    status: npt.NDArray[np.uint8]
    ignored: npt.NDArray[np.bool_]
    #: Index into ``Correlator.rule_sets`` (the tuple of rule ids that fired).
    rule_set: npt.NDArray[np.int32]
    reason: npt.NDArray[np.int32]
    #: Row of each span's parent in this batch (-1 when absent), shared with trace checks.
    parents: npt.NDArray[np.int64]


class Correlator:
    """Links rows to spec nodes for one index version at a time, caching by shape."""

    def __init__(
        self, index: RuntimeIndex, *, heuristic: HeuristicMatcher | None = None,
        cache_size: int = 100_000, span_memory: int = 1_000_000,
    ) -> None:  # fmt: skip
        self.labels = StringPool()
        self.rule_sets: list[tuple[str, ...]] = [()]
        self._rule_set_codes: dict[tuple[str, ...], int] = {(): 0}
        self.cache = ShapeCache(cache_size)
        self._codes: dict[Correlation, tuple[int, int, int, float, bool, int, int]] = {}
        self.memory = SpanMemory(span_memory)
        self.heuristic = heuristic
        self.set_index(index)

    def set_index(self, index: RuntimeIndex) -> None:
        """Switch to another index version (the shape cache is cleared)."""
        self.index = index
        self.lookups = Lookups.build(index)
        self.cache.reset(index.spec_hash)

    def rule_set(self, rules: tuple[str, ...]) -> int:
        """The code of a tuple of rule ids."""
        code = self._rule_set_codes.get(rules)
        if code is None:
            code = len(self.rule_sets)
            self._rule_set_codes[rules] = code
            self.rule_sets.append(rules)
        return code

    def correlate(self, batch: EvidenceBatch) -> CorrelationColumns:
        """Correlate every row of a batch."""
        first, inverse = unique_shapes(batch)
        per_shape = self._resolve_shapes(batch, first)
        is_span = batch.signal == Signal.SPAN
        all_spans = bool(is_span.all())
        own = span_keys(
            batch.trace_hi,
            batch.trace_lo,
            batch.span_id if all_spans else np.where(is_span, batch.span_id, 0),
        )
        parent = span_keys(
            batch.trace_hi,
            batch.trace_lo,
            batch.parent_id if all_spans else np.where(is_span, batch.parent_id, 0),
        )
        cols = self._broadcast(per_shape, inverse, join_rows(own, parent))
        self._inherit_from_parents(cols, inheriting_rows(batch))
        self.memory.remember(own, _pack(cols))
        if not all_spans:
            self._join(
                batch,
                cols,
                batch.signal == Signal.LOG,
                lambda: span_keys(batch.trace_hi, batch.trace_lo, batch.span_id),
                "join.span",
            )
            self._join(
                batch,
                cols,
                batch.signal == Signal.METRIC,
                lambda: span_keys(batch.ex_trace_hi, batch.ex_trace_lo, batch.ex_span_id),
                "join.exemplar",
            )
        self._finish_status(batch, cols)
        return cols  # fmt: skip

    def _resolve_shapes(
        self, batch: EvidenceBatch, first: npt.NDArray[np.int64]
    ) -> list[Correlation]:
        shapes = shapes_of(batch, first)
        results: list[Correlation | None] = []
        pending: list[int] = []
        for i, shape in enumerate(shapes):
            cached = self.cache.get(shape)
            if isinstance(cached, Correlation):
                results.append(cached)
                continue
            det = resolve(shape, self.lookups)
            results.append(det)
            if det is None:
                pending.append(i)
            else:
                self.cache.put(shape, det)
        if pending:
            if self.heuristic is not None:
                found = self.heuristic.match([shapes[i] for i in pending], self.lookups)
            else:
                found = [self._unmatched(shapes[i]) for i in pending]
            for i, corr in zip(pending, found, strict=True):
                results[i] = corr
                self.cache.put(shapes[i], corr)
        return [r if r is not None else Correlation() for r in results]

    def _unmatched(self, shape: Shape) -> Correlation:
        return Correlation(context=self.index.services.get(shape[SERVICE], ""))

    def _broadcast(
        self, per_shape: list[Correlation], inverse: npt.NDArray[np.int64],
        parents: npt.NDArray[np.int64],
    ) -> CorrelationColumns:  # fmt: skip
        n = len(parents)
        if n == 0:
            inverse = np.zeros(0, np.int64)
        memo = self._codes
        try:  # one hash of each correlation (a dataclass hashes all its fields every time)
            coded = [memo[c] for c in per_shape]
        except KeyError:
            self._memoise(per_shape)
            coded = [memo[c] for c in per_shape]
        node, ctx, match, conf, ignored, rules, reason = (
            zip(*coded, strict=True) if per_shape else [()] * 7
        )
        return CorrelationColumns(
            node=np.array(node, np.int32)[inverse], context=np.array(ctx, np.int32)[inverse],
            match=np.array(match, np.uint8)[inverse],
            confidence=np.array(conf, np.float32)[inverse], status=np.zeros(n, np.uint8),
            ignored=np.array(ignored, np.bool_)[inverse],
            rule_set=np.array(rules, np.int32)[inverse],
            reason=np.array(reason, np.int32)[inverse], parents=parents,
        )  # fmt: skip

    def _memoise(self, per_shape: list[Correlation]) -> None:
        """Remember each correlation's columns as numbers (label and rule-set codes); labels and
        rule sets are never renumbered, so the codes hold for the correlator's life. New codes
        are handed out column by column, in shape order (the label order stays the same)."""
        if len(self._codes) + len(per_shape) > self.cache.capacity:
            self._codes.clear()
        code = self.labels.code
        node = [code(c.node) for c in per_shape]
        ctx = [code(c.context) for c in per_shape]
        rules = [self.rule_set(c.rules) for c in per_shape]
        reason = [code(c.reason or "") for c in per_shape]
        for i, c in enumerate(per_shape):
            self._codes[c] = (node[i], ctx[i], int(c.match), c.confidence, c.ignored, rules[i],
                              reason[i])  # fmt: skip

    def _inherit_from_parents(
        self, cols: CorrelationColumns, inheriting: npt.NDArray[np.bool_]
    ) -> None:
        """Unmatched internal/client spans take the node of their nearest matched ancestor."""
        parents = cols.parents
        todo = inheriting & (cols.node == 0) & ~cols.ignored & (parents >= 0)
        rule = self.rule_set(("graph.parent",))
        if not todo.any():
            return
        done = inherit_nodes(parents, todo, (cols.node, cols.context, cols.confidence),
                             factor=JOIN_FACTOR["graph.parent"], max_depth=_MAX_DEPTH)  # fmt: skip
        cols.match[done] = MatchType.HEURISTIC
        cols.rule_set[done] = rule

    def _join(
        self, batch: EvidenceBatch, cols: CorrelationColumns, rows_mask: npt.NDArray[np.bool_],
        make_keys: Callable[[], npt.NDArray[np.uint64]], rule_id: str,
    ) -> None:  # fmt: skip
        if not rows_mask.any():
            return
        keys = make_keys()
        todo = (rows_mask & (cols.node == 0) & ~cols.ignored & (keys != 0)).nonzero()[0]
        if len(todo) == 0:
            return
        found = self.memory.lookup(keys[todo])
        hit = (found >= 0) & ((found >> 32) != 0)  # spans remembered without a node don't help
        rows, packed = todo[hit], found[hit]
        cols.node[rows] = (packed >> 32).astype(np.int32)
        cols.context[rows] = ((packed >> 8) & 0xFFFFFF).astype(np.int32)
        cols.confidence[rows] = (
            (packed & 0xFF).astype(np.float32) / np.float32(255) * np.float32(JOIN_FACTOR[rule_id])
        )
        cols.match[rows] = np.where(cols.node[rows] != 0, MatchType.HEURISTIC, MatchType.NONE)
        cols.rule_set[rows] = self.rule_set((rule_id,))

    def _finish_status(self, batch: EvidenceBatch, cols: CorrelationColumns) -> None:
        matched = cols.node != 0
        cols.status[:] = CorrelationStatus.FAILED
        cols.status[matched & (cols.confidence < OK_CONFIDENCE)] = CorrelationStatus.PARTIAL
        cols.status[(matched & (cols.confidence >= OK_CONFIDENCE)) | cols.ignored] = (
            CorrelationStatus.OK
        )
        no_reason = (~matched) & (~cols.ignored) & (cols.reason == 0)
        if no_reason.any():
            cols.reason[no_reason] = self.labels.code("no spec node matches this item")


def _pack(cols: CorrelationColumns) -> npt.NDArray[np.int64]:
    """node code, context code and confidence (8 bits) in one int64 for the span memory."""
    # minimum(maximum()) is np.clip without its per-call overhead (NaN propagates alike).
    conf = np.minimum(np.maximum(np.rint(cols.confidence * 255), 0), 255).astype(np.int64)
    return (cols.node.astype(np.int64) << 32) | (cols.context.astype(np.int64) << 8) | conf
