"""Shapes: the fields of an item that decide its correlation, hashed per row, cached per shape.

Correlating a shape is the expensive part (dictionary lookups, heuristic kernels); a batch of a
million spans has a few hundred shapes. Rows are reduced to a 64-bit hash of their shape
columns (vectorised), unique hashes are resolved once, and results are broadcast back.
Within one batch two different shapes with the same 64-bit hash would share a result; the
chance for n shapes is about n^2 / 2^65 (1e-8 for 600,000 shapes), accepted for speed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from sidecar.correlate.row_kernels import mix_columns, unique_rows
from sidecar.evidence.batch import EvidenceBatch
from sidecar.evidence.hashing import SEED

#: Batch columns that decide a correlation.
SHAPE_COLUMNS = (
    "signal", "kind", "service", "name", "rpc_service", "rpc_method", "http_method",
    "http_route", "messaging_destination", "event_name",
)  # fmt: skip
#: Semantic attributes that decide a correlation when present (explicit links to the spec).
SHAPE_ATTRIBUTES = ("sea.spec_node", "sea.flow", "sea.context", "sea.policy")

Shape = tuple[str, ...]


def shape_columns(batch: EvidenceBatch) -> list[npt.NDArray[np.int32]]:
    """The code columns of the shape, in SHAPE_COLUMNS + SHAPE_ATTRIBUTES order."""
    n = len(batch)
    zeros = np.zeros(n, np.int32)
    cols = [getattr(batch, c).astype(np.int32, copy=False) for c in SHAPE_COLUMNS]
    cols += [batch.attr.get(a, zeros) for a in SHAPE_ATTRIBUTES]
    return cols


def unique_shapes(
    batch: EvidenceBatch,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """(first row of each distinct shape, shape index of every row)."""
    n = len(batch)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # A column that is empty on every row adds nothing within this batch (hashes only need to
    # agree within one batch; the cache is keyed by the strings).
    h = mix_columns(int(SEED), [col for col in shape_columns(batch) if np.count_nonzero(col)], n)
    return unique_rows(h)


def shape_of(batch: EvidenceBatch, row: int) -> Shape:
    """The shape of one row as strings (the cache key across batches and string pools)."""
    return shapes_of(batch, np.array([row], np.int64))[0]


def shapes_of(batch: EvidenceBatch, rows: npt.NDArray[np.int64]) -> list[Shape]:
    """The shapes of some rows as strings (one gather per column, then pool lookups)."""
    values = batch.pool.values
    texts = [[values[c] for c in getattr(batch, name)[rows].tolist()] for name in SHAPE_COLUMNS[2:]]
    empty = [""] * len(rows)
    texts += [
        [values[c] for c in batch.attr[a][rows].tolist()] if a in batch.attr else empty
        for a in SHAPE_ATTRIBUTES
    ]
    heads = zip(batch.signal[rows].tolist(), batch.kind[rows].tolist(), strict=True)
    return [(str(s), str(k), *rest) for (s, k), *rest in zip(heads, *texts, strict=True)]


@dataclass(slots=True)
class ShapeCache:
    """Bounded LRU map from shape to a correlation, valid for one index version."""

    capacity: int = 100_000
    spec_hash: str = ""
    hits: int = 0
    misses: int = 0
    evictions: int = 0
    _entries: OrderedDict[Shape, object] = field(default_factory=OrderedDict)

    def reset(self, spec_hash: str) -> None:
        """Forget everything: a new index version correlates shapes differently."""
        self._entries.clear()
        self.spec_hash = spec_hash

    def get(self, shape: Shape) -> object | None:
        """The cached result of a shape, or None."""
        value = self._entries.get(shape)
        if value is None:
            self.misses += 1
            return None
        self._entries.move_to_end(shape)
        self.hits += 1
        return value

    def put(self, shape: Shape, value: object) -> None:
        """Remember a result, evicting the least recently used beyond capacity."""
        self._entries[shape] = value
        if len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evictions += 1

    def __len__(self) -> int:
        return len(self._entries)
