"""Trace-level drift: which operations an operation called, against its spec.

For every correlated span that starts a run of its node (its parent has another node), the
*caller* is the nearest ancestor with a node, lifted to the first span of that ancestor's run
(the caller operation's own span). The calls of a caller are the nodes of the runs it
starts, in start-time order. Findings are reported on the **caller's** span, since
``calls``, ``requires_calls`` and ``steps`` are properties of the caller's operation.

The batch must hold whole traces (``groupbytrace`` in the collector, or a replayed file);
a call whose spans are in another batch is not seen.

Retries (:func:`retried_calls`): a failed call that its caller made again (the same callee
node, later, from the same caller span) is a *retried attempt*. Up to ``max_retries`` of them
per (caller span, callee) are benign variation: the call succeeded or failed on its last
attempt, and only that attempt counts in the rate checks. More than ``max_retries`` is a
retry storm the spec did not allow: ``unexpected_call`` on the caller's span, and every
attempt counts. The spec format has no retry-policy field, so the limit is the engine's
(:data:`MAX_RETRIES`).
"""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

from sidecar.correlate.row_kernels import unique_rows
from sidecar.drift.check_memo import CallPattern, Verdict
from sidecar.drift.span_checks import CALLING_KINDS, CheckContext, Finding, linked
from sidecar.evidence.annotations import DRIFT_KIND_BIT
from sidecar.evidence.batch import Signal, Status

_MAX_DEPTH = 64
#: Retries of one call per caller span that are benign (3 attempts in all, the common client
#: default); the spec format has no field to declare a retry policy per operation.
MAX_RETRIES = 2
Edges = tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]
_BASE = np.uint64(0x100000001B3)  # FNV prime: the base of the call-pattern hash


def call_edges(ctx: CheckContext) -> Edges:
    """(caller row, callee row) for every call observed in the batch."""
    b, node = ctx.batch, ctx.cols.node
    parents = ctx.cols.parents
    parent_node = np.where(parents >= 0, node[np.maximum(parents, 0)], -1)
    is_span = b.signal == Signal.SPAN
    run_start = is_span & (node != 0) & (parent_node != node)
    callee = (run_start & (parents >= 0)).nonzero()[0]
    caller = parents[callee]
    # Climb through unmatched ancestors to the nearest one with a node.
    for _ in range(_MAX_DEPTH):
        stuck = (caller >= 0) & (node[np.maximum(caller, 0)] == 0)
        if not stuck.any():
            break
        caller[stuck] = parents[caller[stuck]]
    keep = caller >= 0
    callee, caller = callee[keep], caller[keep]
    # Lift the caller through spans that inherit its node (internal steps) to the operation's
    # own span, and no further: above a server span sits the client span that called it.
    own = ctx.own_span_rows()
    for _ in range(_MAX_DEPTH):
        up = parents[caller]
        same = (up >= 0) & (node[np.maximum(up, 0)] == node[caller]) & ~own[caller]
        if not same.any():
            break
        caller[same] = up[same]
    return caller, callee


def call_findings(
    ctx: CheckContext, edges: Edges | None = None
) -> tuple[list[Finding], npt.NDArray[np.uint32]]:
    """unexpected_call, missing_call and flow_order findings on callers' spans, and the
    missing calls that lost context propagation explains (the callee ran in the same trace,
    but its span's parent is absent).

    Callers repeat the same call pattern thousands of times, so each caller's ordered callee
    sequence is reduced to a polynomial hash (vectorised), every distinct (operation,
    pattern) is judged once in Python, and the verdicts are broadcast to the callers.
    """
    b, cols, labels = ctx.batch, ctx.cols, ctx.correlator.labels
    n = len(b)
    caller, callee = call_edges(ctx) if edges is None else edges
    order = np.lexsort((b.start_ns[callee], caller))
    caller, callee = caller[order], callee[order]
    pattern = np.zeros(n, np.uint64)  # 0: no calls observed
    first_edge = np.full(n, -1, np.int64)
    edge_count = np.zeros(n, np.int64)
    if len(caller):
        starts = np.concatenate(([True], caller[1:] != caller[:-1])).nonzero()[0]
        runs = np.concatenate((starts[1:], [len(caller)])) - starts
        position = np.arange(len(caller)) - np.repeat(starts, runs)
        with np.errstate(over="ignore"):
            powers = np.cumprod(np.full(int(position.max()) + 1, _BASE, np.uint64))
            terms = (cols.node[callee].astype(np.uint64) + np.uint64(1)) * powers[position]
            pattern[caller[starts]] = np.add.reduceat(terms, starts) | np.uint64(1)
        first_edge[caller[starts]] = starts
        edge_count[caller[starts]] = runs
    own = (ctx.own_span_rows() & (cols.node != 0)).nonzero()[0]  # callers judged
    keys = (cols.node[own].astype(np.uint64) << np.uint64(32)) ^ pattern[own]
    first, inverse = unique_rows(keys)
    judged = own[first]
    per_judged = zip(cols.node[judged].tolist(), first_edge[judged].tolist(),
                     edge_count[judged].tolist(), strict=True)  # fmt: skip
    memo = ctx.memo.call_verdicts(ctx.index, labels)
    found: list[Verdict] = []
    for node, e, count in per_judged:
        called = tuple(cols.node[callee[e : e + count]].tolist()) if e >= 0 else ()
        found.append(_verdict(ctx, memo, node, called))
    verdicts = np.array(found, np.bool_).reshape(-1, 3)
    findings: list[Finding] = []
    for k, kind in enumerate(("unexpected_call", "missing_call", "flow_order")):
        mask = np.zeros(n, np.bool_)
        mask[own] = verdicts[inverse, k]
        findings.append(linked(kind, mask, cols.confidence))
    return findings, _lost_context(ctx, findings[1][1], (caller, callee))


def _verdict(ctx: CheckContext, memo: dict[CallPattern, Verdict], node: int,
             called: tuple[int, ...]) -> Verdict:  # fmt: skip
    """(unexpected, missing, out of order) for an operation's calls, remembered across batches:
    callers repeat a handful of patterns."""
    found = memo.get((node, called))
    if found is None:
        labels = ctx.correlator.labels
        op = ctx.index.operations.get(labels[node])
        names = [labels[c] for c in called]
        found = memo[node, called] = (False, False, False) if op is None else (
            bool(op.calls) and any(name not in op.calls for name in names),
            bool(op.requires_calls) and bool(set(op.requires_calls) - set(names)),
            bool(op.steps) and _out_of_order(op.steps, names),
        )  # fmt: skip
    return found


def retried_calls(
    ctx: CheckContext, edges: Edges | None = None, max_retries: int = MAX_RETRIES
) -> tuple[npt.NDArray[np.bool_], Finding]:
    """Failed calls repeated within the retry limit (benign), and ``unexpected_call`` on the
    callers that went over it."""
    b, cols = ctx.batch, ctx.cols
    n = len(b)
    retried = np.zeros(n, np.bool_)
    storm = np.zeros(n, np.bool_)
    caller, callee = call_edges(ctx) if edges is None else edges
    if len(caller) > 1:
        order = np.lexsort((b.start_ns[callee], cols.node[callee], caller))
        caller, callee = caller[order], callee[order]
        same = (caller[1:] == caller[:-1]) & (cols.node[callee[1:]] == cols.node[callee[:-1]])
        calling = CALLING_KINDS[b.kind[callee].view(np.uint8)]
        again = np.concatenate((same, [False])) & calling & (b.status[callee] == Status.ERROR)
        group = np.cumsum(np.concatenate(([True], ~same))) - 1
        over = (np.bincount(group, weights=again) > max_retries)[group]
        retried[callee[again & ~over]] = True
        storm[caller[again & over]] = True
    return retried, linked("unexpected_call", storm, cols.confidence)


def _lost_context(
    ctx: CheckContext, missing: npt.NDArray[np.bool_], edges: Edges
) -> npt.NDArray[np.uint32]:
    """missing_call bits explained by an orphan span of the missing callee in the same trace.

    ``edges`` are sorted by caller row.
    """
    b, cols, labels = ctx.batch, ctx.cols, ctx.correlator.labels
    explained = np.zeros(len(b), np.uint32)
    rows = missing.nonzero()[0]
    if len(rows) == 0:
        return explained
    orphan = (b.signal == Signal.SPAN) & (b.parent_id != 0) & (cols.parents < 0) & (cols.node != 0)
    found = orphan.nonzero()[0]
    # Only orphans in the traces of the callers matter (checked exactly below).
    found = found[np.isin(b.trace_lo[found], b.trace_lo[rows])]
    if len(found) == 0:
        return explained
    by_trace: dict[tuple[int, int], set[str]] = {}
    for hi, lo, node in zip(b.trace_hi[found].tolist(), b.trace_lo[found].tolist(),
                            cols.node[found].tolist(), strict=True):  # fmt: skip
        by_trace.setdefault((hi, lo), set()).add(labels[node])
    caller, callee = edges
    starts = np.searchsorted(caller, rows, "left").tolist()
    stops = np.searchsorted(caller, rows, "right").tolist()
    bit = np.uint32(DRIFT_KIND_BIT["missing_call"])
    for i, (r, hi, lo, node) in enumerate(zip(rows.tolist(), b.trace_hi[rows].tolist(),
                                              b.trace_lo[rows].tolist(), cols.node[rows].tolist(),
                                              strict=True)):  # fmt: skip
        ran = by_trace.get((hi, lo))
        op = ctx.index.operations.get(labels[node])
        if not ran or op is None:
            continue
        called = {labels[c] for c in cols.node[callee[starts[i] : stops[i]]].tolist()}
        if set(op.requires_calls) - called <= ran:
            explained[r] |= bit
    return explained


def _out_of_order(steps: tuple[str, ...], observed: list[str]) -> bool:
    """True when the first occurrences of the steps are not in the spec's order."""
    position = {step: i for i, step in enumerate(steps)}
    firsts: list[int] = []
    seen: set[str] = set()
    for name in observed:
        if name in position and name not in seen:
            seen.add(name)
            firsts.append(position[name])
    return any(a > b for a, b in itertools.pairwise(firsts))
