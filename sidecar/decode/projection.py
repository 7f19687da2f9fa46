"""The processor's projection (``CorrelateRequest``, proto/behavior/v1) into an evidence batch.

The request is already columnar, so nothing here walks rows: every packed column is mapped
with one ``numpy.frombuffer`` (ids as big-endian 64-bit words, everything else little-endian),
the string table becomes pool codes through one remap array, and the attributes go through
the same ragged/dense/binding machinery as the OTLP decoders (:class:`Columns`). Numbers of
attribute values follow ``values``: a string's number is ``text_number`` of its text, computed
once per distinct string; an int's or a double's is its text parsed; other types have none.

The batch equals what ``otlp_proto`` builds from the same telemetry (tested column by column;
the string pools differ only in the order of their codes). Rows may come grouped by trace
rather than in document order (a chunk may then repeat a resource): runs are runs either way.

Anything malformed raises :class:`ProjectionError` naming the field; nothing is repaired.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import cast

import numpy as np
import numpy.typing as npt

from sidecar.decode.columns import Columns
from sidecar.decode.values import I64_MAX, NAN, SEVERITIES, SPAN_KINDS, STATUS_CODES, text_number
from sidecar.errors import ProjectionError
from sidecar.evidence.batch import F64, I32, U8, U64, EvidenceBatch, Signal, StringPool
from sidecar.protocol import correlation_pb2 as pb

#: The protocol version this decoder reads (proto ``ProtocolVersion``).
PROTOCOL_VERSION = int(pb.PROTOCOL_VERSION_1)

SIGNALS: dict[int, Signal] = {
    int(pb.SIGNAL_SPANS): Signal.SPAN,
    int(pb.SIGNAL_LOGS): Signal.LOG,
    int(pb.SIGNAL_METRICS): Signal.METRIC,
}
_EMPTY, _STRING = int(pb.VALUE_TYPE_EMPTY), int(pb.VALUE_TYPE_STRING)
_INT, _DOUBLE = int(pb.VALUE_TYPE_INT), int(pb.VALUE_TYPE_DOUBLE)
_MAX_VALUE_TYPE = max(pb.ValueType.values())
_U32 = np.dtype("<u4")

#: Per-row columns: proto field -> (little-endian dtype, values per row).
_WIDTHS: dict[str, tuple[str, int]] = {
    "trace_id": (">u8", 2), "span_id": (">u8", 1), "parent_span_id": (">u8", 1),
    "start_time_unix_nano": ("<i8", 1), "end_time_unix_nano": ("<i8", 1),
    "kind": ("u1", 1), "status_code": ("u1", 1), "severity_number": ("u1", 1),
    "name": ("<u4", 1), "event_name": ("<u4", 1), "body": ("<u4", 1), "value": ("<f8", 1),
    "exemplar_trace_id": (">u8", 2), "exemplar_span_id": (">u8", 1),
}  # fmt: skip
#: Which per-row columns each signal has (the others are ignored when present).
_SIGNAL_COLUMNS: dict[Signal, frozenset[str]] = {
    Signal.SPAN: frozenset({"trace_id", "span_id", "parent_span_id", "start_time_unix_nano",
                            "end_time_unix_nano", "kind", "status_code", "name"}),
    Signal.LOG: frozenset({"trace_id", "span_id", "start_time_unix_nano", "severity_number",
                           "event_name", "body"}),
    Signal.METRIC: frozenset({"start_time_unix_nano", "name", "value", "exemplar_trace_id",
                              "exemplar_span_id"}),
}  # fmt: skip
_ENUM_LIMITS = {
    "kind": (max(SPAN_KINDS.values()), "a SpanKind"),
    "status_code": (max(STATUS_CODES.values()), "a Status code"),
    "severity_number": (max(SEVERITIES.values()), "a SeverityNumber"),
}


def decode_projection(
    request: pb.CorrelateRequest, attribute_keys: Sequence[str], pool: StringPool | None = None
) -> EvidenceBatch:
    """The evidence batch of one request; raises :class:`ProjectionError` when malformed."""
    if request.protocol_version != PROTOCOL_VERSION:
        raise ProjectionError(
            "protocol_version",
            f"{request.protocol_version}, this sidecar speaks {PROTOCOL_VERSION}",
        )
    signal = SIGNALS.get(int(request.signal))
    if signal is None:
        raise ProjectionError("signal", f"{int(request.signal)} is not spans (1), logs (2) or "
                              "metrics (3)")  # fmt: skip
    n = int(request.rows)
    strings = list(request.strings)  # one conversion of the table to Python strings
    if not strings or strings[0] != "":
        raise ProjectionError("strings", 'strings[0] must be "" (code 0 means absent)')
    table = StringPool.of_table(strings) if pool is None else None
    cols = Columns(attribute_keys, pool if table is None else table)
    if table is not None:  # the request's table is the pool: codes stay as they are
        remap = np.arange(len(strings), dtype=np.int32)
    else:
        remap = np.fromiter(map(cols.pool.code, strings), np.int32, len(strings))
    raw = {f: _packed(getattr(request, f), f, dtype, width, n) for f, (dtype, width) in
           _WIDTHS.items()}  # fmt: skip
    wanted = _SIGNAL_COLUMNS[signal]
    get: dict[str, npt.NDArray[np.generic]] = {
        f: column for f, column in raw.items() if f in wanted and column is not None
    }
    for f in ("start_time_unix_nano", "end_time_unix_nano"):
        if f in get and len(get[f]) and int(get[f].min()) < 0:
            raise ProjectionError(f, f"a time beyond {I64_MAX} (int64 nanoseconds)")
    for f, (limit, what) in _ENUM_LIMITS.items():
        if f in get and len(get[f]) and int(get[f].max()) > limit:
            raise ProjectionError(f, f"{int(get[f].max())} is not {what} (0-{limit})")
    codes = {f: _remapped(get[f], f, remap) for f in ("name", "event_name", "body") if f in get}

    columns: dict[str, npt.NDArray[np.generic]] = {}
    if "trace_id" in get:
        columns["trace_hi"], columns["trace_lo"] = _id128(get["trace_id"], n)
    if "exemplar_trace_id" in get:
        columns["ex_trace_hi"], columns["ex_trace_lo"] = _id128(get["exemplar_trace_id"], n)
    for f, column, dtype in _PLAIN:
        if f in get:
            columns[column] = get[f].astype(dtype)
    for f in ("name", "body"):  # a log record's name is its event (Columns derives it)
        if f in codes:
            columns[f] = codes[f]
    cols.set(**columns)
    if "event_name" in codes:
        cols.set_event_names(cast("Sequence[int]", codes["event_name"]))

    first_rows = _resource_rows(request.resource_first_row, n)
    owner_counts, rkeys, rvalues, _ = _attributes(
        request.resource_attributes, "resource_attributes", len(first_rows), remap, strings,
        numbers=False,
    )  # fmt: skip
    cols.set_resources(first_rows, owner_counts, rkeys, rvalues)
    counts, keys, values, numbers = _attributes(request.attributes, "attributes", n, remap,
                                                strings, numbers=True)  # fmt: skip
    cols.set_attribute_codes(counts, keys, values, numbers)
    return cols.build(signal, n)


#: Columns taken as they are: (proto field, batch column, dtype).
_PLAIN = (
    ("span_id", "span_id", np.uint64), ("parent_span_id", "parent_id", np.uint64),
    ("start_time_unix_nano", "start_ns", np.int64), ("end_time_unix_nano", "end_ns", np.int64),
    ("kind", "kind", np.int8), ("status_code", "status", np.int8),
    ("severity_number", "severity", np.int8), ("value", "value", np.float64),
    ("exemplar_span_id", "ex_span_id", np.uint64),
)  # fmt: skip


def _packed(
    data: bytes, field: str, dtype: str, width: int, n: int
) -> npt.NDArray[np.generic] | None:
    """A packed per-row column, or None when it is empty (absent)."""
    if not data:
        return None
    size = np.dtype(dtype).itemsize * width
    if len(data) != n * size:
        raise ProjectionError(
            field, f"{len(data)} bytes, expected {n} rows x {size} = {n * size} bytes (or none)"
        )
    return np.frombuffer(data, dtype)


def _remapped(codes: npt.NDArray[np.generic], field: str, remap: I32) -> I32:
    """Request string codes as pool codes; every code must be in the string table."""
    if len(codes) and int(codes.max()) >= len(remap):
        raise ProjectionError(
            field, f"code {int(codes.max())} is beyond the string table ({len(remap)} strings)"
        )
    pool_codes: I32 = remap[codes]
    return pool_codes


def _id128(words: npt.NDArray[np.generic], n: int) -> tuple[U64, U64]:
    """16-byte ids (two big-endian words per row) as native (high, low) halves."""
    pairs = words.reshape(n, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


def _resource_rows(data: bytes, n: int) -> U64:
    """Where each resource's rows start; they tile the rows in order."""
    if len(data) % 4:
        raise ProjectionError("resource_first_row", f"{len(data)} bytes, not uint32 entries")
    first = np.frombuffer(data, _U32).astype(np.uint64)
    if n and not len(first):
        raise ProjectionError("resource_first_row", "no resource for a request with rows")
    if len(first):
        if first[0] != 0:
            raise ProjectionError("resource_first_row", f"starts at {int(first[0])}, not 0")
        if len(first) > 1 and not bool(np.all(first[1:] > first[:-1])):
            raise ProjectionError("resource_first_row", "not strictly increasing")
        if int(first[-1]) >= n:
            raise ProjectionError(
                "resource_first_row", f"a resource starts at row {int(first[-1])} of {n} rows"
            )
    return first


def _attributes(
    message: pb.Attributes, field: str, owners: int, remap: I32, strings: Sequence[str], *,
    numbers: bool,
) -> tuple[U64, I32, I32, F64]:  # fmt: skip
    """(counts, key codes, value codes, numbers) of one Attributes message, checked."""
    if len(message.counts) % 4:
        raise ProjectionError(f"{field}.counts", f"{len(message.counts)} bytes, not uint32")
    counts = np.frombuffer(message.counts, _U32).astype(np.uint64)
    if not len(counts):
        counts = np.zeros(owners, np.uint64)
    elif len(counts) != owners:
        raise ProjectionError(f"{field}.counts", f"{len(counts)} entries for {owners} owners")
    total = int(counts.sum())
    types: U8 = np.frombuffer(message.value_types, np.uint8)
    for part, data, size in (("keys", message.keys, 4), ("values", message.values, 4),
                             ("value_types", message.value_types, 1)):  # fmt: skip
        if len(data) != total * size:
            raise ProjectionError(
                f"{field}.{part}", f"{len(data) // size} entries, the counts sum to {total}"
            )
    if total and int(types.max()) > _MAX_VALUE_TYPE:
        raise ProjectionError(
            f"{field}.value_types", f"{int(types.max())} is not a ValueType (0-{_MAX_VALUE_TYPE})"
        )
    raw_values = np.frombuffer(message.values, _U32)
    if total and bool(np.any((types == _EMPTY) & (raw_values != 0))):
        raise ProjectionError(f"{field}.values", "an empty value (VALUE_TYPE_EMPTY) must have "
                              "code 0")  # fmt: skip
    keys = _remapped(np.frombuffer(message.keys, _U32), f"{field}.keys", remap)
    values = _remapped(raw_values, f"{field}.values", remap)
    if not numbers:
        return counts, keys, values, np.zeros(0, np.float64)
    return counts, keys, values, _numbers(raw_values, types, strings, field)


def _numbers(codes: npt.NDArray[np.uint32], types: U8, strings: Sequence[str], field: str) -> F64:
    """Each value's number by its type, parsing each distinct text once (and remembering it
    across requests: the same texts recur)."""
    typed = (types == _INT) | (types == _DOUBLE)
    numeric = typed | (types == _STRING)
    if not numeric.any():
        return np.full(len(codes), NAN)
    table = np.fromiter(map(_text_number, strings), np.float64, len(strings))
    out: F64 = table[codes]
    if not numeric.all():
        out[~numeric] = NAN
    unparsed = typed & np.isnan(out)
    if unparsed.any():  # an int or double whose text is no number (NaN's own text is fine)
        for code in np.unique(codes[unparsed]).tolist():
            if strings[code].strip().lower().lstrip("+-") != "nan":
                raise ProjectionError(
                    f"{field}.values", f"'{strings[code][:40]}' is typed int/double but no number"
                )
    return out


_NUMBER_START = frozenset("0123456789+-.iInN")


@lru_cache(maxsize=1 << 16)
def _text_number(text: str) -> float:
    """``text_number``, skipping the parse when the first character rules a number out."""
    head = text[:1]
    if head in _NUMBER_START or head.isdigit() or head.isspace():
        return text_number(text)
    return NAN
