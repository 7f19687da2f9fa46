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

from sidecar.evidence.batch import EvidenceBatch
from sidecar.evidence.hashing import SEED, mix64

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
    h = np.full(n, SEED, np.uint64)
    with np.errstate(over="ignore"):
        for col in shape_columns(batch):
            # A column that is empty on every row adds nothing within this batch (hashes only
            # need to agree within one batch; the cache is keyed by the strings).
            if col.any():
                h = mix64(h ^ col.astype(np.uint64))
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)
    return first.astype(np.int64), inverse.reshape(-1).astype(np.int64)


def shape_of(batch: EvidenceBatch, row: int) -> Shape:
    """The shape of one row as strings (the cache key across batches and string pools)."""
    pool = batch.pool
    values = [pool[int(getattr(batch, c)[row])] for c in SHAPE_COLUMNS[2:]]
    values += [pool[int(batch.attr[a][row])] if a in batch.attr else "" for a in SHAPE_ATTRIBUTES]
    return (str(int(batch.signal[row])), str(int(batch.kind[row])), *values)


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
