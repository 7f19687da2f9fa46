"""Item-local drift checks: each looks at one row (and its correlation), never at other rows.

Every check returns ``(mask, score)`` arrays over the batch: which rows show the drift kind,
and how sure we are (the correlation confidence for checks that depend on the link being
right, a fixed certainty for checks on facts the item carries itself). Work is done per node
or per distinct string, not per row in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sidecar.correlate.correlator import CorrelationColumns, Correlator
from sidecar.evidence.batch import EvidenceBatch, Signal, SpanKind, StringPool
from sidecar.spec.expr import ExpressionError, compile_assertion
from sidecar.spec_index.index import RuntimeIndex

Mask = npt.NDArray[np.bool_]
Score = npt.NDArray[np.float32]
Finding = tuple[str, Mask, Score]

#: Certainty of checks on facts the item itself carries (no correlation involved).
FACT = np.float32(0.95)
#: Rules whose links make a row the operation's *own* span (attributes apply to it);
#: rows linked through a parent or a join inherit the node but are not that span.
_OWN_SPAN_RULES = frozenset({"sea.spec_node", "sea.flow", "bind.span_name", "bind.rpc",
                             "bind.http", "bind.messaging", "heuristic.name"})  # fmt: skip


@dataclass(slots=True)
class CheckContext:
    """What every check may read: the batch, its correlation and the index."""

    batch: EvidenceBatch
    cols: CorrelationColumns
    correlator: Correlator

    @property
    def index(self) -> RuntimeIndex:
        """The index the batch was correlated against."""
        return self.correlator.index

    def codes_of(self, values: set[str], pool: StringPool) -> npt.NDArray[np.int32]:
        """Codes of the given strings in a pool (absent strings are skipped)."""
        return np.array([c for v in values if (c := pool.find(v)) >= 0], np.int32)

    def node_rows(self) -> Iterator[tuple[str, Mask]]:
        """(node id, rows correlated to it) for every node present in the batch."""
        labels = self.correlator.labels
        for code in np.unique(self.cols.node):
            if code != 0:
                yield labels[int(code)], self.cols.node == code

    def own_span_rows(self) -> Mask:
        """Span rows that are an operation's own span (not inherited through the graph)."""
        own_sets = np.array(
            [bool(set(r) & _OWN_SPAN_RULES) for r in self.correlator.rule_sets], np.bool_
        )
        # Client and producer spans are the calling side: the operation's attributes and
        # policies apply to the span that implements it (server, consumer).
        calling = np.isin(self.batch.kind, np.array([SpanKind.CLIENT, SpanKind.PRODUCER], np.int8))
        mask: Mask = (self.batch.signal == Signal.SPAN) & ~calling & own_sets[self.cols.rule_set]
        return mask


def fact(kind: str, mask: Mask) -> Finding:
    """A finding on facts the item carries itself: fixed certainty where it holds."""
    return kind, mask, np.where(mask, FACT, 0).astype(np.float32)


def linked(kind: str, mask: Mask, confidence: Score) -> Finding:
    """A finding that depends on the correlation: as certain as the link is."""
    return kind, mask, np.where(mask, confidence, 0).astype(np.float32)


def _zeros(n: int) -> tuple[Mask, Score]:
    return np.zeros(n, np.bool_), np.zeros(n, np.float32)


def unknown_service(ctx: CheckContext) -> Finding:
    """Telemetry from a service.name the spec does not place in any context."""
    b = ctx.batch
    known = ctx.codes_of(set(ctx.index.services), b.pool)
    mask = (b.service != 0) & ~np.isin(b.service, known) & ~ctx.cols.ignored
    return fact("unknown_service", mask)


def undeclared_operation(ctx: CheckContext) -> Finding:
    """An entry point (server/consumer span) of a spec'd service that matches no operation."""
    b, c = ctx.batch, ctx.cols
    known = ctx.codes_of(set(ctx.index.services), b.pool)
    entry = np.isin(b.kind, np.array([SpanKind.SERVER, SpanKind.CONSUMER], np.int8))
    mask = (b.signal == Signal.SPAN) & entry & (c.node == 0) & ~c.ignored
    mask &= np.isin(b.service, known)
    return fact("undeclared_operation", mask)


def deprecated_operation(ctx: CheckContext) -> Finding:
    """Use of an operation the spec marks deprecated."""
    mask, _ = _zeros(len(ctx.batch))
    for node, rows in ctx.node_rows():
        entry = ctx.index.nodes.get(node)
        if entry is not None and entry.deprecated:
            mask |= rows & (ctx.batch.signal == Signal.SPAN)
    return linked("deprecated_operation", mask, ctx.cols.confidence)


def _attribute_check(ctx: CheckContext, kind: str, pick: Callable[[str], tuple[str, ...]],
                     present: bool) -> Finding:  # fmt: skip
    b = ctx.batch
    mask, _ = _zeros(len(b))
    own = ctx.own_span_rows()
    absent = np.zeros(len(b), np.int32)
    for node, rows in ctx.node_rows():
        op = ctx.index.operations.get(node)
        if op is None:
            continue
        own_rows = rows & own
        for key in pick(node):
            column = b.attr.get(key, absent)
            mask |= own_rows & ((column != 0) if present else (column == 0))
    return linked(kind, mask, ctx.cols.confidence)


def missing_attribute(ctx: CheckContext) -> Finding:
    """An operation's own span lacks an attribute the spec requires."""
    ops = ctx.index.operations
    return _attribute_check(ctx, "missing_attribute", lambda n: ops[n].required_attributes,
                            present=False)  # fmt: skip


def forbidden_attribute(ctx: CheckContext) -> Finding:
    """An operation's own span carries an attribute the spec forbids."""
    ops = ctx.index.operations
    return _attribute_check(ctx, "forbidden_attribute", lambda n: ops[n].forbidden_attributes,
                            present=True)  # fmt: skip


def undeclared_event(ctx: CheckContext) -> Finding:
    """A log record names an event the spec does not declare."""
    b = ctx.batch
    declared = ctx.codes_of(set(ctx.index.bindings.log_event), b.pool)
    mask = (b.signal == Signal.LOG) & (b.event_name != 0) & ~np.isin(b.event_name, declared)
    return fact("undeclared_event", mask)


def undeclared_metric(ctx: CheckContext) -> Finding:
    """A metric data point whose metric the spec does not declare."""
    b = ctx.batch
    declared = ctx.codes_of(set(ctx.index.bindings.metric), b.pool)
    mask = (b.signal == Signal.METRIC) & (b.name != 0) & ~np.isin(b.name, declared)
    return fact("undeclared_metric", mask)


def metric_range(ctx: CheckContext) -> Finding:
    """A data point outside its metric's declared range."""
    b = ctx.batch
    mask, _ = _zeros(len(b))
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

    Evaluated once per distinct combination of the attribute values it reads.
    """
    b = ctx.batch
    mask, _ = _zeros(len(b))
    own = ctx.own_span_rows()
    for policy in ctx.index.policies.values():
        if not policy.assertion or not policy.when_flow:
            continue
        code = ctx.correlator.labels.find(policy.when_flow)
        if code < 0:
            continue
        rows = np.flatnonzero((ctx.cols.node == code) & own)
        if len(rows) == 0:
            continue
        try:
            assertion = compile_assertion(policy.assertion)
        except ExpressionError:
            continue  # the index is validated at compile time; nothing to check here
        keys = assertion.attribute_keys
        absent = np.zeros(len(b), np.int32)
        combos = np.stack([b.attr.get(k, absent)[rows] for k in keys], axis=1) if keys else (
            np.zeros((len(rows), 1), np.int32))  # fmt: skip
        uniq, inverse = np.unique(combos, axis=0, return_inverse=True)
        verdicts = np.array([
            assertion.evaluate({k: _typed(b.pool[int(c)]) for k, c in zip(keys, combo, strict=True)
                                if c != 0}) is False
            for combo in uniq
        ], np.bool_)  # fmt: skip
        mask[rows[verdicts[inverse.reshape(-1)]]] = True
    return linked("policy_violation", mask, ctx.cols.confidence)


def _typed(text: str) -> object:
    """Attribute text back to a number where it is one (policies compare numbers)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


ITEM_CHECKS: tuple[Callable[[CheckContext], Finding], ...] = (
    unknown_service, undeclared_operation, deprecated_operation, missing_attribute,
    forbidden_attribute, undeclared_event, undeclared_metric, metric_range, broken_telemetry,
    policy_violation,
)  # fmt: skip
