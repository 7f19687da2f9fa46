"""The ``pii_exposure`` check: PII detectors over attribute values and log bodies.

Each distinct string is scanned once per batch, and remembered across batches in a bounded
cache, so a value repeated on a million spans costs one scan. Detectors are the union over
the spec's privacy rules (all four when the spec configures none); attribute keys listed as
``pii_attributes`` count whenever they hold a value.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from sidecar.drift.pii import (
    ALL_DETECTORS,
    Detector,
    detectors_named,
    key_flags,
    row_flags,
    scan_pool,
)
from sidecar.drift.span_checks import CheckContext, Finding, fact


class PiiScanner:
    """Scans strings for PII with a bounded memory of strings already scanned."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[str, int] = OrderedDict()
        self.scanned = 0

    def flags(self, values: list[str], detectors: Detector) -> npt.NDArray[np.uint8]:
        """Detector bits per string, scanning only strings not seen before."""
        out = np.zeros(len(values), np.uint8)
        fresh: list[int] = []
        for i, v in enumerate(values):
            known = self._seen.get(v)
            if known is None:
                fresh.append(i)
            else:
                out[i] = known
        if fresh:
            bits = scan_pool([values[i] for i in fresh], detectors)
            self.scanned += len(fresh)
            for i, b in zip(fresh, bits.tolist(), strict=True):
                out[i] = b
                self._seen[values[i]] = b
            while len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
        return out


def pii_exposure(ctx: CheckContext, scanner: PiiScanner) -> Finding:
    """Rows whose attribute values or body hold PII, or that carry a configured PII key."""
    b, privacy = ctx.batch, ctx.index.privacy.values()
    names = {d for rule in privacy for d in rule.detectors}
    detectors = detectors_named(names) if names else ALL_DETECTORS
    pool = b.pool.values
    used = np.unique(np.concatenate([b.attr_values, b.body]))
    used = used[used != 0]
    value_flags = np.zeros(len(pool), np.uint8)
    if len(used):
        value_flags[used] = scanner.flags([pool[int(c)] for c in used], detectors)
    pii_keys = {k for rule in privacy for k in rule.pii_attributes}
    keys = key_flags(pool, pii_keys) if pii_keys else np.zeros(len(pool), np.uint8)
    flags = row_flags(b.attr_offsets, b.attr_keys, b.attr_values, value_flags, keys, body=b.body)
    mask = (flags != 0) & ~ctx.cols.ignored
    return fact("pii_exposure", mask)
