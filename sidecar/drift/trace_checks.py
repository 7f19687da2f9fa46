"""Trace-level drift: which operations an operation called, against its spec.

For every correlated span that starts a run of its node (its parent has another node), the
*caller* is the nearest ancestor with a node, lifted to the first span of that ancestor's run
(the caller operation's own span). The calls of a caller are the nodes of the runs it
starts, in start-time order. Findings are reported on the **caller's** span, since
``calls``, ``requires_calls`` and ``steps`` are properties of the caller's operation.

The batch must hold whole traces (``groupbytrace`` in the collector, or a replayed file);
a call whose spans are in another batch is not seen.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

import numpy as np
import numpy.typing as npt

from sidecar.correlate.joins import parent_rows
from sidecar.drift.span_checks import CheckContext, Finding
from sidecar.evidence.batch import Signal

_MAX_DEPTH = 64


def call_edges(ctx: CheckContext) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(caller row, callee row) for every call observed in the batch."""
    b, node = ctx.batch, ctx.cols.node
    parents = parent_rows(b)
    parent_node = np.where(parents >= 0, node[np.maximum(parents, 0)], -1)
    is_span = b.signal == Signal.SPAN
    run_start = is_span & (node != 0) & (parent_node != node)
    callee = np.flatnonzero(run_start & (parents >= 0))
    caller = parents[callee]
    # Climb through unmatched ancestors to the nearest one with a node.
    for _ in range(_MAX_DEPTH):
        stuck = (caller >= 0) & (node[np.maximum(caller, 0)] == 0)
        if not stuck.any():
            break
        caller[stuck] = parents[caller[stuck]]
    keep = caller >= 0
    callee, caller = callee[keep], caller[keep]
    # Lift the caller to the first span of its node's run (the operation's own span).
    for _ in range(_MAX_DEPTH):
        up = parents[caller]
        same = (up >= 0) & (node[np.maximum(up, 0)] == node[caller])
        if not same.any():
            break
        caller[same] = up[same]
    return caller, callee


def call_findings(ctx: CheckContext) -> list[Finding]:
    """unexpected_call, missing_call and flow_order findings on callers' spans."""
    b, cols, labels = ctx.batch, ctx.cols, ctx.correlator.labels
    n = len(b)
    masks = {k: np.zeros(n, np.bool_) for k in ("unexpected_call", "missing_call", "flow_order")}
    caller, callee = call_edges(ctx)
    calls: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for a, r in zip(caller.tolist(), callee.tolist(), strict=True):
        calls[a].append((int(b.start_ns[r]), labels[int(cols.node[r])]))
    own = ctx.own_span_rows()
    for row in np.flatnonzero(own).tolist():
        op = ctx.index.operations.get(labels[int(cols.node[row])])
        if op is None:
            continue
        seen = sorted(calls.get(row, ()))
        names = [name for _, name in seen]
        if op.calls and any(name not in op.calls for name in names):
            masks["unexpected_call"][row] = True
        if op.requires_calls and set(op.requires_calls) - set(names):
            masks["missing_call"][row] = True
        if op.steps and _out_of_order(op.steps, names):
            masks["flow_order"][row] = True
    return [(kind, mask, np.where(mask, cols.confidence, 0).astype(np.float32))
            for kind, mask in masks.items()]  # fmt: skip


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
