"""Links that need more than one item's shape: logs to their span, metric points to exemplar
spans, internal spans to the operation that encloses them.

Spans correlated earlier are remembered in a bounded :class:`SpanMemory` so a log or metric
arriving in a later batch (replay reads traces before logs) still finds its span.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sidecar.correlate.row_kernels import join_rows
from sidecar.evidence.batch import EvidenceBatch, Signal, SpanKind
from sidecar.evidence.hashing import M1, M2


def span_keys(
    trace_hi: npt.NDArray[np.uint64], trace_lo: npt.NDArray[np.uint64],
    span_id: npt.NDArray[np.uint64],
) -> npt.NDArray[np.uint64]:  # fmt: skip
    """A 64-bit key per (trace id, span id); 0 where the span id is absent."""
    with np.errstate(over="ignore"):
        h = trace_hi * M1 ^ trace_lo
        h = (h ^ (h >> np.uint64(29))) * M2 ^ span_id
        h = h ^ (h >> np.uint64(32))
    h[h == 0] = 1
    h[span_id == 0] = 0
    return h


@dataclass(slots=True)
class SpanMemory:
    """The value of recently seen spans, by span key; holds at most ``capacity`` spans.

    Chunks are appended as batches arrive and looked up with a hash join, newest first; the
    oldest chunks are dropped (and counted) beyond capacity.
    """

    capacity: int = 1_000_000
    _chunks: list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]] = field(
        default_factory=list
    )
    _size: int = 0
    evicted: int = 0

    def remember(self, keys: npt.NDArray[np.uint64], values: npt.NDArray[np.int64]) -> None:
        """Store values (row payloads, e.g. packed node code) for keys."""
        keep = keys != 0
        if not keep.any():
            return
        self._chunks.append((keys[keep], values[keep]))
        self._size += int(keep.sum())
        while self._size > self.capacity and len(self._chunks) > 1:
            old_keys, _ = self._chunks.pop(0)
            self._size -= len(old_keys)
            self.evicted += len(old_keys)

    def lookup(self, keys: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
        """The stored value per key, newest first; -1 where unknown."""
        out = np.full(len(keys), -1, np.int64)
        for chunk_keys, chunk_values in reversed(self._chunks):
            missing = ((out < 0) & (keys != 0)).nonzero()[0]
            if len(missing) == 0:
                break
            rows = join_rows(chunk_keys, keys[missing])
            found = rows >= 0
            out[missing[found]] = chunk_values[rows[found]]
        return out

    def __len__(self) -> int:
        return self._size


def parent_rows(batch: EvidenceBatch) -> npt.NDArray[np.int64]:
    """For each span row, the row of its parent span in this batch (-1 when not present)."""
    is_span = batch.signal == Signal.SPAN
    own = span_keys(batch.trace_hi, batch.trace_lo, np.where(is_span, batch.span_id, 0))
    parent = span_keys(batch.trace_hi, batch.trace_lo, np.where(is_span, batch.parent_id, 0))
    return join_rows(own, parent)


#: Kinds of the spans that may inherit a node, as a lookup table over kind codes (a gather
#: instead of ``np.isin``, whose set machinery costs more than the rows of a batch).
_INHERITING = np.zeros(256, np.bool_)
_INHERITING[[SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.UNSPECIFIED]] = True


def inheriting_rows(batch: EvidenceBatch) -> npt.NDArray[np.bool_]:
    """Spans that may take their enclosing operation's node: internal and client spans."""
    mask: npt.NDArray[np.bool_] = _INHERITING[batch.kind.view(np.uint8)]
    mask &= batch.signal == Signal.SPAN
    return mask
