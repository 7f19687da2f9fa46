"""From findings to the contract's drift fields: kinds, score, class and level.

Level follows the seed's signal policy on the drift score (how sure we are that the item
departs from the spec): >= 0.70 alert (medium, or high from 0.90), 0.30-0.70 summarize
(low), below 0.30 suppress (none).

Class: *benign* when every kind found on an item is explained by tolerated variation (the
``explained`` bits the checks pass, e.g. a missing call whose callee ran but lost its parent
link), *semantic* otherwise. Benign items keep their kinds (they are evidence) but their
level is capped at low, so they never alert.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sidecar.evidence.annotations import DRIFT_KIND_BIT, DriftClass, DriftLevel

Finding = tuple[str, npt.NDArray[np.bool_], npt.NDArray[np.float32]]

HIGH, ALERT, SUMMARIZE = 0.90, 0.70, 0.30


@dataclass(slots=True)
class Drift:
    """Per-row drift fields of the contract."""

    kinds: npt.NDArray[np.uint32]
    score: npt.NDArray[np.float32]
    cls: npt.NDArray[np.uint8]
    level: npt.NDArray[np.uint8]


def combine(
    findings: Sequence[Finding], n: int, explained: npt.NDArray[np.uint32] | None = None
) -> Drift:
    """Kinds mask, score, class and level per row from all findings.

    ``explained`` holds, per row, the kind bits that benign variation accounts for (lost
    context propagation for a missing call, ...); a row whose every kind is explained is
    benign.
    """
    kinds = np.zeros(n, np.uint32)
    score = np.zeros(n, np.float32)
    for kind, mask, kind_score in findings:
        if not np.count_nonzero(mask):
            continue  # most checks find nothing in most batches
        np.bitwise_or(kinds, np.uint32(DRIFT_KIND_BIT[kind]), out=kinds, where=mask)
        np.maximum(score, kind_score, out=score, where=mask)
    # The level is the number of thresholds the score reaches (none where no kind is found).
    found = kinds != 0
    level = (score >= SUMMARIZE).view(np.uint8) + (score >= ALERT).view(np.uint8)
    level += (score >= HIGH).view(np.uint8)
    level *= found.view(np.uint8)
    cls = found.view(np.uint8) * np.uint8(DriftClass.SEMANTIC)
    if explained is not None:
        soft = found & ((kinds & ~explained) == 0)
        cls[soft] = DriftClass.BENIGN
        np.minimum(level, np.uint8(DriftLevel.LOW), out=level, where=soft)
    return Drift(kinds, score, cls, level)
