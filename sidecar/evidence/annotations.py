"""Columnar annotations: the engine's output, one entry per batch row, and the contract names.

The attribute names and values here are the product's public contract (MISSION.md,
"Contract"); OpenObserve dashboards, the CI gate and other parties query them. They are
written by the OTLP JSON writer (replay) and by the processor (gRPC path) from these columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.correlate.row_kernels import mix_columns
from sidecar.evidence.batch import EvidenceBatch, StringPool
from sidecar.evidence.hashing import M1, M2, SEED, hash_text

# The contract's attribute names.
SPEC_NODE_ID = "behavior.spec_node_id"
CONTEXT = "behavior.context"
MATCH_TYPE = "behavior.match_type"
CONFIDENCE = "behavior.confidence"
CORRELATION_STATUS = "behavior.correlation_status"
DRIFT_SCORE = "behavior.drift_score"
DRIFT_LEVEL = "behavior.drift_level"
DRIFT_CLASS = "behavior.drift_class"
DRIFT_KINDS = "behavior.drift_kinds"
RULE_IDS = "behavior.rule_ids"
EVIDENCE_ID = "behavior.evidence_id"
SPEC_VERSION = "behavior.spec_version"


class MatchType(IntEnum):
    """How an item was linked to its spec node."""

    NONE = 0
    DETERMINISTIC = 1
    HEURISTIC = 2


class CorrelationStatus(IntEnum):
    """ok: every required semantic attribute present; partial: optional ones missing; failed."""

    OK = 0
    PARTIAL = 1
    FAILED = 2


class DriftLevel(IntEnum):
    """Alert (medium/high) at confidence >= 0.70, summarize (low) 0.30-0.70, suppress below."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


class DriftClass(IntEnum):
    """Whether a drift matters: benign variation or a semantic departure from the spec."""

    NONE = 0
    BENIGN = 1
    SEMANTIC = 2


#: The drift vocabulary, in bit order of the ``drift_kinds`` mask.
DRIFT_KIND_NAMES = (
    "undeclared_operation", "deprecated_operation", "unknown_service", "unexpected_call",
    "missing_call", "flow_order", "missing_attribute", "forbidden_attribute", "pii_exposure",
    "latency_budget", "error_budget", "baseline_shift", "policy_violation", "metric_range",
    "undeclared_metric", "undeclared_event", "broken_telemetry",
)  # fmt: skip
DRIFT_KIND_BIT = {name: 1 << i for i, name in enumerate(DRIFT_KIND_NAMES)}

F32 = npt.NDArray[np.float32]
U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]


@dataclass(slots=True)
class Annotations:
    """One entry per batch row. Node ids, contexts and rule ids are codes into ``labels``."""

    labels: StringPool
    spec_node: I32
    context: I32
    match_type: U8
    confidence: F32
    status: U8
    drift_score: F32
    drift_level: U8
    drift_class: U8
    drift_kinds: U32
    #: Rule ids that fired, ragged: row i owns rule_codes[rule_offsets[i]:rule_offsets[i+1]].
    rule_offsets: npt.NDArray[np.int64]
    rule_codes: I32
    evidence_id: U64
    spec_version: str

    def __len__(self) -> int:
        return int(self.spec_node.shape[0])

    def attributes(self, row: int) -> dict[str, Any]:
        """The contract attributes of one row (writers turn these into OTLP attributes)."""
        labels = self.labels
        mask = int(self.drift_kinds[row])
        lo, hi = int(self.rule_offsets[row]), int(self.rule_offsets[row + 1])
        return {
            SPEC_NODE_ID: labels[int(self.spec_node[row])],
            CONTEXT: labels[int(self.context[row])],
            MATCH_TYPE: MatchType(int(self.match_type[row])).name.lower(),
            CONFIDENCE: round(float(self.confidence[row]), 4),
            CORRELATION_STATUS: CorrelationStatus(int(self.status[row])).name.lower(),
            DRIFT_SCORE: round(float(self.drift_score[row]), 4),
            DRIFT_LEVEL: DriftLevel(int(self.drift_level[row])).name.lower(),
            DRIFT_CLASS: DriftClass(int(self.drift_class[row])).name.lower(),
            DRIFT_KINDS: [n for n in DRIFT_KIND_NAMES if mask & DRIFT_KIND_BIT[n]],
            RULE_IDS: [labels[int(c)] for c in self.rule_codes[lo:hi]],
            EVIDENCE_ID: f"{int(self.evidence_id[row]):016x}",
            SPEC_VERSION: self.spec_version,
        }


def evidence_ids(batch: EvidenceBatch) -> U64:
    """Deterministic ids per row from what identifies the item.

    Signal, trace and span id, start time, service, name and body: the same item replayed or
    re-sent gets the same id, so storage can de-duplicate (at-least-once delivery never
    duplicates evidence).
    """
    with np.errstate(over="ignore"):
        texts = _hash_codes(batch, batch.service) ^ (_hash_codes(batch, batch.name) * M1)
        if batch.body.any():
            texts ^= _hash_codes(batch, batch.body) * M2
        signal = batch.signal.astype(np.uint64) << np.uint64(56)
        # h = mix64(h ^ column) over the columns, from SEED (one compiled loop per column).
        h = mix_columns(int(SEED), [batch.trace_hi, batch.trace_lo ^ signal, batch.span_id,
                                    batch.start_ns.view(np.uint64), texts], len(batch))  # fmt: skip
    # Never 0, so 0 can mean "no evidence" elsewhere.
    h[h == 0] = 1
    return h


def _hash_codes(batch: EvidenceBatch, column: npt.NDArray[np.int32]) -> U64:
    """Stable hashes of a code column's strings (codes differ between batches, text doesn't)."""
    pool = batch.pool.values
    used = np.zeros(len(pool), np.bool_)
    used[column] = True
    codes = used.nonzero()[0]
    hashes = np.zeros(len(pool), np.uint64)
    hashes[codes] = np.array([_text_hash(pool[c]) for c in codes.tolist()], np.uint64)
    out: U64 = hashes[column]
    return out


@lru_cache(maxsize=1 << 16)
def _text_hash(text: str) -> int:
    """``hash_text``, remembered: the same service and span names recur in every batch."""
    return hash_text(text)
