"""Item-local drift checks: each looks at one row (and its correlation), never at other rows.

Every check returns ``(mask, score)`` arrays over the batch: which rows show the drift kind,
and how sure we are (the correlation confidence for checks that depend on the link being
right, a fixed certainty for checks on facts the item carries itself). Work is done per node
or per distinct string, not per row in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sidecar.correlate.correlator import CorrelationColumns, Correlator
from sidecar.correlate.row_kernels import unique_rows
from sidecar.drift.check_memo import CheckMemo, KeyTable
from sidecar.evidence.batch import I32, EvidenceBatch, Signal, SpanKind, StringPool
from sidecar.spec_index.index import RuntimeIndex

Mask = npt.NDArray[np.bool_]
Score = npt.NDArray[np.float32]
Finding = tuple[str, Mask, Score]

#: Certainty of checks on facts the item itself carries (no correlation involved).
FACT = np.float32(0.95)

#: Kinds of the calling side of a call (client, producer) and of entry points (server,
#: consumer), as lookup tables over kind codes (index with ``kind.view(np.uint8)``).
CALLING_KINDS = np.zeros(256, np.bool_)
CALLING_KINDS[[SpanKind.CLIENT, SpanKind.PRODUCER]] = True
_ENTRY = np.zeros(256, np.bool_)
_ENTRY[[SpanKind.SERVER, SpanKind.CONSUMER]] = True


@dataclass(slots=True)
class CheckContext:
    """What every check may read: the batch, its correlation and the index.

    Derived masks and tables are computed once per batch (several checks share them).
    """

    batch: EvidenceBatch
    cols: CorrelationColumns
    correlator: Correlator
    memo: CheckMemo = field(default_factory=CheckMemo)
    _own: Mask | None = None
    _services: npt.NDArray[np.bool_] | None = None
    _signals: frozenset[int] | None = None
    _own_nodes: tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]] | None = None

    @property
    def index(self) -> RuntimeIndex:
        """The index the batch was correlated against."""
        return self.correlator.index

    def codes_of(self, values: set[str], pool: StringPool) -> npt.NDArray[np.int32]:
        """Codes of the given strings in a pool (absent strings are skipped)."""
        return np.array([c for v in values if (c := pool.find(v)) >= 0], np.int32)

    def has(self, signal: Signal) -> bool:
        """Whether the batch holds rows of a signal."""
        if self._signals is None:
            counts = np.bincount(self.batch.signal, minlength=3)
            self._signals = frozenset(counts.nonzero()[0].tolist())
        return int(signal) in self._signals

    def known_services(self) -> npt.NDArray[np.bool_]:
        """Per pool code: a service.name the spec places in a context."""
        if self._services is None:
            pool = self.batch.pool
            table = np.zeros(len(pool), np.bool_)
            table[self.codes_of(set(self.index.services), pool)] = True
            self._services = table
        return self._services

    def node_rows(self) -> Iterator[tuple[str, Mask]]:
        """(node id, rows correlated to it) for every node present in the batch."""
        labels = self.correlator.labels
        for code in np.unique(self.cols.node):
            if code != 0:
                yield labels[int(code)], self.cols.node == code

    def own_span_rows(self) -> Mask:
        """Span rows that are an operation's own span (not inherited through the graph)."""
        if self._own is None:
            own_sets = self.memo.own_rule_sets(self.correlator.rule_sets)
            # Client and producer spans are the calling side: the operation's attributes and
            # policies apply to the span that implements it (server, consumer).
            calling = CALLING_KINDS[self.batch.kind.view(np.uint8)]
            mask: Mask = own_sets[self.cols.rule_set] & ~calling
            if not self.has(Signal.SPAN):
                mask[:] = False
            elif self.has(Signal.LOG) or self.has(Signal.METRIC):
                mask &= self.batch.signal == Signal.SPAN
            self._own = mask
        return self._own

    def own_nodes(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]:
        """The rows of :meth:`own_span_rows` and their node codes."""
        if self._own_nodes is None:
            rows = self.own_span_rows().nonzero()[0]
            self._own_nodes = rows, self.cols.node[rows]
        return self._own_nodes

    def tables(self) -> CheckMemo:
        """The per-label tables for this batch's index and labels."""
        return self.memo.node_tables(self.index, self.correlator.labels)


def fact(kind: str, mask: Mask) -> Finding:
    """A finding on facts the item carries itself: fixed certainty where it holds."""
    if not np.count_nonzero(mask):
        return kind, mask, np.zeros(len(mask), np.float32)
    return kind, mask, np.where(mask, FACT, 0).astype(np.float32)


def linked(kind: str, mask: Mask, confidence: Score) -> Finding:
    """A finding that depends on the correlation: as certain as the link is."""
    if not np.count_nonzero(mask):
        return kind, mask, np.zeros(len(mask), np.float32)
    return kind, mask, np.where(mask, confidence, 0).astype(np.float32)


def _zeros(n: int) -> tuple[Mask, Score]:
    return np.zeros(n, np.bool_), np.zeros(n, np.float32)


def unknown_service(ctx: CheckContext) -> Finding:
    """Telemetry from a service.name the spec does not place in any context."""
    b = ctx.batch
    mask = (b.service != 0) & ~ctx.known_services()[b.service] & ~ctx.cols.ignored
    return fact("unknown_service", mask)


def undeclared_operation(ctx: CheckContext) -> Finding:
    """An entry point (server/consumer span) of a spec'd service that matches no operation."""
    b, c = ctx.batch, ctx.cols
    if not ctx.has(Signal.SPAN):
        return fact("undeclared_operation", np.zeros(len(b), np.bool_))
    mask = _ENTRY[b.kind.view(np.uint8)] & (c.node == 0) & ~c.ignored
    mask &= ctx.known_services()[b.service]
    if ctx.has(Signal.LOG) or ctx.has(Signal.METRIC):
        mask &= b.signal == Signal.SPAN
    return fact("undeclared_operation", mask)


def deprecated_operation(ctx: CheckContext) -> Finding:
    """Use of an operation the spec marks deprecated."""
    b = ctx.batch
    deprecated = ctx.tables().deprecated
    if not ctx.has(Signal.SPAN) or not deprecated.any():
        return linked("deprecated_operation", np.zeros(len(b), np.bool_), ctx.cols.confidence)
    mask = deprecated[ctx.cols.node] & (b.signal == Signal.SPAN)
    return linked("deprecated_operation", mask, ctx.cols.confidence)


def _attribute_check(ctx: CheckContext, kind: str, table: KeyTable, present: bool) -> Finding:
    """Own spans of nodes whose operation lists a key, where the key is (not) present.

    All keys at once: a (keys x own spans) matrix of "listed" against one of "present".
    """
    b = ctx.batch
    mask = np.zeros(len(b), np.bool_)
    keys, matrix = table
    if keys:
        rows, node = ctx.own_nodes()
        nodes = np.zeros(matrix.shape[1], np.bool_)
        nodes[node] = True
        # Keys some own span's node lists; an absent column is never present.
        listed: list[int] = np.flatnonzero((matrix & nodes).any(axis=1)).tolist()
        picked = [i for i in listed if not present or keys[i] in b.attr]
        if picked:
            absent = np.zeros(len(rows), np.int32)
            values = np.stack([b.attr[keys[i]][rows] if keys[i] in b.attr else absent
                               for i in picked])  # fmt: skip
            hit = (values != 0) if present else (values == 0)
            mask[rows] = (matrix[picked][:, node] & hit).any(axis=0)
    return linked(kind, mask, ctx.cols.confidence)


def missing_attribute(ctx: CheckContext) -> Finding:
    """An operation's own span lacks an attribute the spec requires."""
    return _attribute_check(ctx, "missing_attribute", ctx.tables().required_table, present=False)


def forbidden_attribute(ctx: CheckContext) -> Finding:
    """An operation's own span carries an attribute the spec forbids."""
    return _attribute_check(ctx, "forbidden_attribute", ctx.tables().forbidden_table,
                            present=True)  # fmt: skip


def undeclared_event(ctx: CheckContext) -> Finding:
    """A log record names an event the spec does not declare."""
    b = ctx.batch
    return _undeclared(ctx, "undeclared_event", Signal.LOG, b.event_name,
                       ctx.index.bindings.log_event)  # fmt: skip


def undeclared_metric(ctx: CheckContext) -> Finding:
    """A metric data point whose metric the spec does not declare."""
    b = ctx.batch
    return _undeclared(ctx, "undeclared_metric", Signal.METRIC, b.name, ctx.index.bindings.metric)


def _undeclared(ctx: CheckContext, kind: str, signal: Signal, names: I32,
                declared_names: Iterable[str]) -> Finding:  # fmt: skip
    """Rows of ``signal`` whose name (a code column) is set but not among the declared."""
    b = ctx.batch
    if not ctx.has(signal):
        return fact(kind, np.zeros(len(b), np.bool_))
    declared = ctx.codes_of(set(declared_names), b.pool)
    return fact(kind, (b.signal == signal) & (names != 0) & ~np.isin(names, declared))


def metric_range(ctx: CheckContext) -> Finding:
    """A data point outside its metric's declared range."""
    b = ctx.batch
    mask, _ = _zeros(len(b))
    if not ctx.has(Signal.METRIC):
        return fact("metric_range", mask)
    is_metric = b.signal == Signal.METRIC
    for name, entry in ctx.index.metrics.items():
        code = b.pool.find(name)
        if code < 0:
            continue
        rows = is_metric & (b.name == code)
        if entry.min is not None:
            mask |= rows & (b.value < entry.min)
        if entry.max is not None:
            mask |= rows & (b.value > entry.max)
    return fact("metric_range", mask)


def broken_telemetry(ctx: CheckContext) -> Finding:
    """Items that cannot be what they claim: spans without ids, ending before they start."""
    b = ctx.batch
    span = b.signal == Signal.SPAN
    no_trace = (b.trace_hi == 0) & (b.trace_lo == 0)
    mask = span & (no_trace | (b.span_id == 0) | (b.end_ns < b.start_ns))
    mask |= (b.signal == Signal.LOG) & (b.span_id != 0) & no_trace
    return fact("broken_telemetry", mask)


def policy_violation(ctx: CheckContext) -> Finding:
    """A runtime policy assertion is false for an item of the flow it governs.

    Evaluated once per distinct combination of the attribute values it reads (and remembered
    across batches by the values' text).
    """
    b = ctx.batch
    mask, _ = _zeros(len(b))
    policies = [p for p in ctx.index.policies.values() if p.assertion and p.when_flow]
    if not policies:
        return linked("policy_violation", mask, ctx.cols.confidence)
    labels, node = ctx.correlator.labels, ctx.cols.node
    present: npt.NDArray[np.int64] | None = None
    values = b.pool.values
    for policy in policies:
        assert policy.assertion is not None and policy.when_flow is not None
        code = labels.find(policy.when_flow)
        if code < 0:
            continue
        if present is None:
            present = np.bincount(node, minlength=len(labels))
        if code >= len(present) or not present[code]:
            continue
        own_rows, own_node = ctx.own_nodes()
        rows = own_rows[own_node == code]
        if len(rows) == 0:
            continue
        assertion = ctx.memo.assertion(policy.assertion)
        if assertion is None:
            continue
        columns = [b.attr.get(k) for k in assertion.attribute_keys]
        picked = [np.zeros(len(rows), np.int32) if c is None else c[rows] for c in columns]
        first, inverse = _combinations(picked, len(rows))
        verdicts = np.array([
            ctx.memo.verdict(assertion, tuple(values[int(c[r])] if c[r] else None
                                              for c in picked))
            for r in first.tolist()
        ], np.bool_)  # fmt: skip
        mask[rows[verdicts[inverse]]] = True
    return linked("policy_violation", mask, ctx.cols.confidence)


def _combinations(columns: list[npt.NDArray[np.int32]], n: int,
                  ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:  # fmt: skip
    """(first row of each distinct combination of column codes, every row's combination)."""
    if not columns:
        return np.zeros(min(n, 1), np.int64), np.zeros(n, np.int64)
    if len(columns) <= 2:
        key = columns[0].astype(np.uint64)
        if len(columns) == 2:
            key = (key << np.uint64(32)) | columns[1].astype(np.uint64)
        return unique_rows(key)
    _, first, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_index=True,
                                  return_inverse=True)  # fmt: skip
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)


ITEM_CHECKS: tuple[Callable[[CheckContext], Finding], ...] = (
    unknown_service, undeclared_operation, deprecated_operation, missing_attribute,
    forbidden_attribute, undeclared_event, undeclared_metric, metric_range, broken_telemetry,
    policy_violation,
)  # fmt: skip
