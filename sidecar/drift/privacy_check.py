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
        known = list(map(self._seen.get, values))
        if None not in known:
            return np.array(known, np.uint8)
        out = np.zeros(len(values), np.uint8)
        fresh: list[int] = []
        for i, k in enumerate(known):
            if k is None:
                fresh.append(i)
            else:
                out[i] = k
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
    used = np.zeros(len(pool), np.bool_)
    used[b.attr_values] = True
    used[b.body] = True
    used[0] = False
    codes = used.nonzero()[0]
    value_flags = np.zeros(len(pool), np.uint8)
    if len(codes):
        value_flags[codes] = scanner.flags([pool[c] for c in codes.tolist()], detectors)
    keys = np.zeros(len(pool), np.uint8)
    for key in {k for rule in privacy for k in rule.pii_attributes}:
        code = b.pool.find(key)
        if code >= 0:
            keys[code] = Detector.CONFIGURED_KEY
    if not value_flags.any() and not keys.any():
        return fact("pii_exposure", np.zeros(len(b), np.bool_))  # nothing PII-shaped at all
    flags = row_flags(b.attr_offsets, b.attr_keys, b.attr_values, value_flags, keys, body=b.body)
    mask = (flags != 0) & ~ctx.cols.ignored
    return fact("pii_exposure", mask)
