"""The columnar evidence batch: the engine's only input representation.

Every decoder (OTLP JSON, OTLP protobuf, the processor's projection) produces one, and every
stage reads it; nothing downstream re-parses telemetry. One row per span, log record or metric
data point, in **document order** (resource -> scope -> item; for metrics, metric -> data
point), so writers can address results back by position.

Strings are dictionary-encoded into one :class:`StringPool` per batch (code 0 is "absent");
ids and times are packed integers; attributes come twice: dense code columns for the keys the
spec index asks for (``attr``), and every attribute as ragged arrays (``attr_offsets`` /
``attr_keys`` / ``attr_values``) for detectors that must see all of them (PII, forbidden keys).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U8 = npt.NDArray[np.uint8]
I8 = npt.NDArray[np.int8]
F64 = npt.NDArray[np.float64]


class Signal(IntEnum):
    """What a row is."""

    SPAN = 0
    LOG = 1
    METRIC = 2


class SpanKind(IntEnum):
    """OTLP span kinds (the same numbers as the protocol)."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5


class Status(IntEnum):
    """OTLP status codes (the same numbers as the protocol)."""

    UNSET = 0
    OK = 1
    ERROR = 2


class StringPool:
    """Dictionary encoding for every string column of a batch; code 0 is the absent string."""

    __slots__ = ("_codes", "values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self.values: list[str] = [""]
        self._codes: dict[str, int] = {"": 0}
        for v in values:
            self.code(v)

    def code(self, value: str | None) -> int:
        """The code of ``value`` (added if new); None and "" are 0."""
        if not value:
            return 0
        code = self._codes.get(value)
        if code is None:
            code = len(self.values)
            self._codes[value] = code
            self.values.append(value)
        return code

    @classmethod
    def of_table(cls, values: Sequence[str]) -> StringPool | None:
        """A pool whose codes are the positions in ``values`` ("" first, no string twice);
        None when ``values`` is not such a table."""
        codes = dict(zip(values, range(len(values)), strict=True))
        if len(codes) != len(values) or codes.get("") != 0:
            return None
        pool = cls()
        pool.values = list(values)
        pool._codes = codes
        return pool

    def find(self, value: str) -> int:
        """The code of ``value`` if present, else -1 (never adds)."""
        return self._codes.get(value, -1)

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, code: int) -> str:
        return self.values[code]


#: The binding columns every decoder fills (from attributes, with semantic-convention
#: fallbacks such as ``http.method`` for ``http.request.method``).
BINDING_COLUMNS = (
    "rpc_service",
    "rpc_method",
    "http_method",
    "http_route",
    "messaging_destination",
    "event_name",
)


@dataclass(slots=True)
class EvidenceBatch:
    """Columns of one batch; every column has one entry per row (ragged ones via offsets)."""

    pool: StringPool
    signal: U8
    trace_hi: U64
    trace_lo: U64
    span_id: U64
    parent_id: U64
    start_ns: I64
    end_ns: I64
    kind: I8
    status: I8
    severity: I8
    service: I32
    name: I32
    rpc_service: I32
    rpc_method: I32
    http_method: I32
    http_route: I32
    messaging_destination: I32
    event_name: I32
    body: I32
    value: F64
    #: For metric points: the first exemplar's trace and span (0 when none).
    ex_trace_hi: U64
    ex_trace_lo: U64
    ex_span_id: U64
    #: Dense attribute columns for the index's attribute keys: key -> codes (0 = absent).
    attr: dict[str, I32] = field(default_factory=dict)
    #: Every attribute of every row: row i owns entries attr_offsets[i]:attr_offsets[i+1].
    attr_offsets: I64 = field(default_factory=lambda: np.zeros(1, np.int64))
    attr_keys: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    attr_values: I32 = field(default_factory=lambda: np.zeros(0, np.int32))
    #: Numeric value of each ragged attribute (NaN when not numeric), for policy assertions.
    attr_numbers: F64 = field(default_factory=lambda: np.zeros(0, np.float64))

    def __len__(self) -> int:
        return int(self.signal.shape[0])

    @property
    def duration_ns(self) -> I64:
        """End minus start (0 for logs and metric points)."""
        return self.end_ns - self.start_ns

    def attributes_of(self, row: int) -> dict[str, str]:
        """All attributes of one row as strings (for messages and tests, not the hot path)."""
        lo, hi = int(self.attr_offsets[row]), int(self.attr_offsets[row + 1])
        p = self.pool
        return {
            p[int(k)]: p[int(v)]
            for k, v in zip(self.attr_keys[lo:hi], self.attr_values[lo:hi], strict=True)
        }

    def text(self, column: str, row: int) -> str:
        """The string in a code column at a row."""
        codes: I32 = getattr(self, column) if column in _CODE_COLUMNS else self.attr[column]
        return self.pool[int(codes[row])]


_CODE_COLUMNS = frozenset({"service", "name", "body", *BINDING_COLUMNS})


def empty_batch(attribute_keys: Sequence[str] = ()) -> EvidenceBatch:
    """A batch with no rows (and the dense attribute columns the index asks for)."""
    return BatchBuilder(attribute_keys).build()


class BatchBuilder:
    """Row-at-a-time construction for decoders that walk documents (JSON, protobuf).

    Decoders of columnar input (the processor's projection) build columns directly instead.
    """

    def __init__(self, attribute_keys: Sequence[str] = (), pool: StringPool | None = None) -> None:
        self.pool = pool or StringPool()
        self.attribute_keys = tuple(attribute_keys)
        self._key_set = frozenset(self.attribute_keys)
        self._ints: dict[str, list[int]] = {c: [] for c in _INT_COLUMNS}
        self._value: list[float] = []
        self._dense: dict[str, list[int]] = {k: [] for k in self.attribute_keys}
        self._offsets: list[int] = [0]
        self._keys: list[int] = []
        self._values: list[int] = []
        self._numbers: list[float] = []

    def add(self, row: dict[str, int], attributes: dict[str, object], value: float = float("nan"),
            ) -> None:  # fmt: skip
        """Append one row: integer/code columns by name (missing ones are 0) and attributes."""
        for column, values in self._ints.items():
            values.append(row.get(column, 0))
        self._value.append(value)
        code = self.pool.code
        for key, values in self._dense.items():
            v = attributes.get(key)
            values.append(code(_as_text(v)) if v is not None else 0)
        for key, v in attributes.items():
            self._keys.append(code(key))
            self._values.append(code(_as_text(v)))
            self._numbers.append(_as_number(v))
        self._offsets.append(len(self._keys))

    def build(self) -> EvidenceBatch:
        """Freeze the rows into numpy columns."""
        ints = self._ints
        return EvidenceBatch(
            pool=self.pool,
            signal=np.asarray(ints["signal"], np.uint8),
            trace_hi=np.asarray(ints["trace_hi"], np.uint64),
            trace_lo=np.asarray(ints["trace_lo"], np.uint64),
            span_id=np.asarray(ints["span_id"], np.uint64),
            parent_id=np.asarray(ints["parent_id"], np.uint64),
            start_ns=np.asarray(ints["start_ns"], np.int64),
            end_ns=np.asarray(ints["end_ns"], np.int64),
            kind=np.asarray(ints["kind"], np.int8),
            status=np.asarray(ints["status"], np.int8),
            severity=np.asarray(ints["severity"], np.int8),
            service=np.asarray(ints["service"], np.int32),
            name=np.asarray(ints["name"], np.int32),
            rpc_service=np.asarray(ints["rpc_service"], np.int32),
            rpc_method=np.asarray(ints["rpc_method"], np.int32),
            http_method=np.asarray(ints["http_method"], np.int32),
            http_route=np.asarray(ints["http_route"], np.int32),
            messaging_destination=np.asarray(ints["messaging_destination"], np.int32),
            event_name=np.asarray(ints["event_name"], np.int32),
            body=np.asarray(ints["body"], np.int32),
            value=np.asarray(self._value, np.float64),
            ex_trace_hi=np.asarray(ints["ex_trace_hi"], np.uint64),
            ex_trace_lo=np.asarray(ints["ex_trace_lo"], np.uint64),
            ex_span_id=np.asarray(ints["ex_span_id"], np.uint64),
            attr={k: np.asarray(v, np.int32) for k, v in self._dense.items()},
            attr_offsets=np.asarray(self._offsets, np.int64),
            attr_keys=np.asarray(self._keys, np.int32),
            attr_values=np.asarray(self._values, np.int32),
            attr_numbers=np.asarray(self._numbers, np.float64),
        )


_INT_COLUMNS = (
    "signal", "trace_hi", "trace_lo", "span_id", "parent_id", "start_ns", "end_ns", "kind",
    "status", "severity", "service", "name", *BINDING_COLUMNS, "body", "ex_trace_hi",
    "ex_trace_lo", "ex_span_id",
)  # fmt: skip


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 2**53 else repr(value)
    if isinstance(value, list | tuple):
        return ",".join(_as_text(v) for v in value)
    return str(value)


def _as_number(value: object) -> float:
    if isinstance(value, bool):
        return float("nan")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return float("nan")
    return float("nan")


def split_id128(hex_id: str) -> tuple[int, int]:
    """A 32-hex-digit trace id as (high, low) 64-bit halves; (0, 0) when absent or invalid."""
    if len(hex_id) != 32:
        return 0, 0
    try:
        return int(hex_id[:16], 16), int(hex_id[16:], 16)
    except ValueError:
        return 0, 0


def id64(hex_id: str) -> int:
    """A 16-hex-digit span id as an integer; 0 when absent or invalid."""
    if len(hex_id) != 16:
        return 0
    try:
        return int(hex_id, 16)
    except ValueError:
        return 0


def concat_batches(batches: Sequence[EvidenceBatch]) -> EvidenceBatch:
    """One batch from several that share one string pool (decoded with the same pool)."""
    if not batches:
        return empty_batch()
    pool = batches[0].pool
    if any(b.pool is not pool for b in batches):
        raise ValueError("concat_batches needs batches decoded into one StringPool")
    if len(batches) == 1:
        return batches[0]
    keys = sorted({k for b in batches for k in b.attr})
    columns = {
        name: np.concatenate([getattr(b, name) for b in batches])
        for name in (*_INT_COLUMNS, "value")
    }
    dense = {
        k: np.concatenate([b.attr.get(k, np.zeros(len(b), np.int32)) for b in batches])
        for k in keys
    }
    shifts = np.cumsum([0] + [len(b.attr_keys) for b in batches[:-1]])
    offsets = np.concatenate(
        [batches[0].attr_offsets[:1]] + [b.attr_offsets[1:] + s for b, s in zip(batches, shifts,
                                                                                  strict=True)]
    )  # fmt: skip
    return EvidenceBatch(
        pool=pool, **columns, attr=dense, attr_offsets=offsets.astype(np.int64),
        attr_keys=np.concatenate([b.attr_keys for b in batches]),
        attr_values=np.concatenate([b.attr_values for b in batches]),
        attr_numbers=np.concatenate([b.attr_numbers for b in batches]),
    )  # fmt: skip
