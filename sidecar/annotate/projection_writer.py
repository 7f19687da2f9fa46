"""The engine's annotations as a ``CorrelateResponse`` (proto/behavior/v1): the gRPC path.

Row i of the response annotates row i of the request. Every column is packed little-endian
with one ``tobytes`` (the processor reads them with ``binary.LittleEndian``); node ids,
contexts and rule ids are codes into a string table made of just the labels this batch uses
(the engine's label pool grows over the process's life and is not sent whole).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sidecar.evidence.annotations import Annotations
from sidecar.protocol import correlation_pb2 as pb

PROTOCOL_VERSION = int(pb.PROTOCOL_VERSION_1)


def encode_annotations(
    annotations: Annotations, projection: pb.Projection | None = None
) -> pb.CorrelateResponse:
    """The response for one batch's annotations (with a new projection, when given)."""
    a = annotations
    labels = a.labels.values
    rule_codes = a.rule_codes[int(a.rule_offsets[0]) : int(a.rule_offsets[-1])]
    used = np.zeros(len(labels), np.bool_)
    used[0] = True
    for codes in (a.spec_node, a.context, rule_codes):
        used[codes] = True
    order = np.flatnonzero(used)
    remap = np.zeros(len(labels), np.uint32)
    remap[order] = np.arange(len(order), dtype=np.uint32)
    response = pb.CorrelateResponse(
        protocol_version=PROTOCOL_VERSION,
        spec_version=a.spec_version,
        rows=len(a),
        strings=[labels[i] for i in order.tolist()],
        spec_node_id=_packed(remap[a.spec_node], "<u4"),
        context=_packed(remap[a.context], "<u4"),
        match_type=_packed(a.match_type, "u1"),
        confidence=_packed(_unit(a.confidence), "<f4"),
        correlation_status=_packed(a.status, "u1"),
        drift_score=_packed(_unit(a.drift_score), "<f4"),
        drift_level=_packed(a.drift_level, "u1"),
        drift_class=_packed(a.drift_class, "u1"),
        drift_kinds=_packed(a.drift_kinds, "<u4"),
        rule_counts=_packed(np.diff(a.rule_offsets), "<u4"),
        rule_ids=_packed(remap[rule_codes], "<u4"),
        evidence_id=_packed(a.evidence_id, "<u8"),
    )
    if projection is not None:
        response.projection.CopyFrom(projection)
    return response


def _packed(column: npt.NDArray[np.generic], dtype: str) -> bytes:
    return column.astype(dtype, copy=False).tobytes()


def _unit(column: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    """Scores within 0..1 as the contract says (the processor rejects anything else)."""
    if bool((column >= 0).all()) and bool((column <= 1).all()):  # no NaN, nothing outside
        return column.astype(np.float32, copy=False)
    out: npt.NDArray[np.float32] = np.clip(np.nan_to_num(column, nan=0.0), 0.0, 1.0).astype(
        np.float32
    )
    return out
