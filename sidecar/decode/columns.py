"""Columns of one OTLP document, as the decoders hand them over, frozen into one batch.

Decoders gather each field of all items of a document into one column and convert whole
columns (ids with one ``bytes.fromhex``, strings with one dictionary pass), instead of calling
:meth:`~sidecar.evidence.batch.BatchBuilder.add` per row: a dict per row costs more than the
decoding itself. The rules are BatchBuilder's (tests check that both agree); added here is
the OTLP shape:

- a row's ragged attributes are its item's own (span, log record or data point); resource
  attributes are not copied onto every row;
- a dense ``attr`` column takes the item's attribute and falls back to the resource's, so a
  ``sea.context`` set on a resource applies to every item under it (an empty string counts
  as absent, here and for binding columns);
- binding columns come from item attributes only, best key first (``semconv.BINDING_KEYS``);
- columns a signal does not have stay 0 (NaN for ``value``); log records and data points
  are instants (end = start); a log record is named by its event.

The processor's projection arrives with a string table already, so its decoder feeds pool
codes (:meth:`Columns.set_resources`, :meth:`Columns.set_attribute_codes`) into the same
slots and runs instead of texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

import numpy as np
import numpy.typing as npt

from sidecar.decode.semconv import BINDING_KEYS, SERVICE_NAME
from sidecar.decode.values import NAN, Plain, plain_number, plain_text, text_number
from sidecar.evidence.batch import F64, I32, I64, U64, EvidenceBatch, Signal, StringPool

#: The columns a decoder sets directly (the others come from attributes and resources).
_SETTABLE = frozenset(
    {"trace_hi", "trace_lo", "span_id", "parent_id", "start_ns", "end_ns", "kind", "status",
     "severity", "name", "body", "value", "ex_trace_hi", "ex_trace_lo", "ex_span_id"}
)  # fmt: skip
#: Slot 0 is the LogRecord ``eventName`` field; rank -1 puts it above ``event.name``.
_EVENT_SLOT, _EVENT_FIELD = 0, ("event_name", -1)


class Columns:
    """One document's columns: decoders set whole columns, :meth:`build` makes the batch."""

    def __init__(self, attribute_keys: Sequence[str], pool: StringPool | None) -> None:
        self.pool = pool if pool is not None else StringPool()
        self.attribute_keys = tuple(dict.fromkeys(attribute_keys))
        # Caches in front of the pool and of float(): one dict lookup per value.
        self.codes: dict[str, int] = {}
        self.numbers: dict[str, float] = {}
        self.data: dict[str, Sequence[Any] | npt.NDArray[Any]] = {}
        self._counts: Sequence[int] = ()
        self._keys: I32 = np.zeros(0, np.int32)
        self._values: I32 = np.zeros(0, np.int32)
        self._numbers = np.zeros(0, np.float64)
        # Where binding and dense columns take their codes from: slot -> (column, rank);
        # a key can feed a binding column and a dense column at once.
        self._targets: list[tuple[str, int]] = [_EVENT_FIELD]
        self._slots: dict[str, list[int]] = {}
        for column, keys in BINDING_KEYS.items():
            for rank, key in enumerate(keys):
                self._add_slot(key, column, rank)
        for key in self.attribute_keys:
            self._add_slot(key, "attr:" + key, 0)
        self._hits: list[tuple[int, I64, I32]] = []
        # Resource runs: first row, service code, the resource's dense attribute codes.
        self._run_rows: list[int] = []
        self._run_codes: list[tuple[int, ...]] = []

    def _add_slot(self, key: str, column: str, rank: int) -> None:
        self._slots.setdefault(key, []).append(len(self._targets))
        self._targets.append((column, rank))

    def code(self, text: str) -> int:
        """The pool code of one string."""
        c = self.codes.get(text)
        if c is None:
            c = self.codes[text] = self.pool.code(text)
        return c

    def codes_of(self, texts: Sequence[str]) -> list[int]:
        """The pool codes of a column of strings."""
        codes = self.codes
        out = list(map(codes.get, texts))
        if None in out:
            for text in dict.fromkeys(texts):  # first-seen order keeps codes deterministic
                if text not in codes:
                    codes[text] = self.pool.code(text)
            out = list(map(codes.get, texts))
        return cast("list[int]", out)

    def numbers_of(self, texts: Sequence[str]) -> list[float]:
        """What each string attribute stands for as a number (NaN when nothing)."""
        numbers = self.numbers
        out = list(map(numbers.get, texts))
        if None in out:
            for text in dict.fromkeys(texts):
                if text not in numbers:
                    numbers[text] = text_number(text)
            out = list(map(numbers.get, texts))
        return cast("list[float]", out)

    def texts_numbers(self, values: Sequence[Plain]) -> tuple[list[str], list[float]]:
        """Attribute values of any kind as (text, number) columns (see ``values``)."""
        texts = [v if type(v) is str else plain_text(v) for v in values]
        numbers = [plain_number(v) for v in values]
        strings = [i for i, v in enumerate(values) if type(v) is str]
        if strings:
            for i, x in zip(strings, self.numbers_of([texts[i] for i in strings]), strict=True):
                numbers[i] = x
        return texts, numbers

    def start_resource(self, attributes: dict[str, str], first_row: int) -> None:
        """Rows from ``first_row`` on belong to a resource with these attributes (as text)."""
        code = self.code
        self._run_rows.append(first_row)
        self._run_codes.append(
            (
                code(attributes.get(SERVICE_NAME, "")),
                *(code(attributes.get(k, "")) for k in self.attribute_keys),
            )
        )

    def set(self, **columns: Sequence[Any] | npt.NDArray[Any]) -> None:
        """Set columns, one entry per row (names as in EvidenceBatch)."""
        if not _SETTABLE.issuperset(columns):
            raise AssertionError(f"not a settable column: {sorted(set(columns) - _SETTABLE)}")
        self.data.update(columns)

    def set_attributes(
        self,
        counts: Sequence[int],
        keys: Sequence[str],
        texts: Sequence[str],
        numbers: Sequence[float],
    ) -> None:
        """Every row's attributes: row i has ``counts[i]`` consecutive (key, text, number)."""
        self._counts = counts
        self._keys = np.asarray(self.codes_of(keys), np.int32)
        self._values = np.asarray(self.codes_of(texts), np.int32)
        self._numbers = np.asarray(numbers, np.float64)
        rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        for key, slots in self._slots.items():
            code = self.codes.get(key)
            if code is None:  # not a string of this document, so no row has it
                continue
            chosen = (self._keys == code) & (self._values != 0)
            if chosen.any():
                for slot in slots:
                    self._hits.append((slot, rows[chosen], self._values[chosen]))

    def set_event_names(self, codes: Sequence[int]) -> None:
        """The LogRecord ``eventName`` field per row (0 = none); it outranks ``event.name``."""
        values = np.asarray(codes, np.int32)
        chosen = np.flatnonzero(values)
        if len(chosen):
            self._hits.append((_EVENT_SLOT, chosen.astype(np.int64), values[chosen]))

    def set_resources(self, first_rows: U64, counts: U64, keys: I32, values: I32) -> None:
        """Resource runs from codes: where each starts and its attributes (pool codes, ragged by
        ``counts``); the projection decoder's :meth:`start_resource`."""
        wanted = (SERVICE_NAME, *self.attribute_keys)
        table = np.zeros((len(first_rows), len(wanted)), np.int32)
        if len(keys):
            owner = np.repeat(np.arange(len(first_rows)), counts.astype(np.int64))
            for j, key in enumerate(wanted):
                code = self.pool.find(key)
                if code > 0:
                    hit = np.flatnonzero(keys == code)
                    # A repeated key: the last one wins, as in a dict of the attributes.
                    table[owner[hit], j] = values[hit]
        self._run_rows = first_rows.astype(np.int64).tolist()
        self._run_codes = list(map(tuple, table.tolist()))

    def set_attribute_codes(self, counts: U64, keys: I32, values: I32, numbers: F64) -> None:
        """Every row's attributes as pool codes (``Columns.set_attributes`` without texts)."""
        self._counts = cast("Sequence[int]", counts.astype(np.int64))
        self._keys, self._values, self._numbers = keys, values, numbers
        slot_keys = list(self._slots)
        lookup = np.full(len(self.pool), -1, np.int32)
        for i, key in enumerate(slot_keys):
            code = self.pool.find(key)
            if code > 0:
                lookup[code] = i
        which = lookup[keys]
        chosen = np.flatnonzero((which >= 0) & (values != 0))
        if not len(chosen):
            return
        rows = np.repeat(np.arange(len(counts), dtype=np.int32), self._counts)[chosen]
        # Group the chosen entries by key with one stable (radix) sort; entry order is kept
        # within a key, so a repeated key's last entry wins.
        which = which[chosen].astype(np.int16 if len(slot_keys) < 2**15 else np.int32)
        order = np.argsort(which, kind="stable")
        ends = np.cumsum(np.bincount(which, minlength=len(slot_keys))).tolist()
        for i, (start, stop) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
            if start == stop:
                continue
            mine = order[start:stop]
            key_rows, key_values = rows[mine].astype(np.int64), values[chosen[mine]]
            for slot in self._slots[slot_keys[i]]:
                self._hits.append((slot, key_rows, key_values))

    def build(self, signal: Signal, n: int) -> EvidenceBatch:
        """Freeze ``n`` rows (all of one signal) into a batch."""
        data = self.data
        service, dense = self._resource_columns(n)
        bound = self._scatter(n, dense)
        counts = self._counts if len(self._counts) else np.zeros(n, np.int64)
        if len(counts) != n:
            raise AssertionError("attributes set for some rows only")
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.asarray(counts, np.int64), out=offsets[1:])
        start = _column(data.get("start_ns"), n, np.int64)
        return EvidenceBatch(
            pool=self.pool,
            signal=np.full(n, int(signal), np.uint8),
            trace_hi=_column(data.get("trace_hi"), n, np.uint64),
            trace_lo=_column(data.get("trace_lo"), n, np.uint64),
            span_id=_column(data.get("span_id"), n, np.uint64),
            parent_id=_column(data.get("parent_id"), n, np.uint64),
            start_ns=start,
            end_ns=_column(data["end_ns"], n, np.int64) if "end_ns" in data else start.copy(),
            kind=_column(data.get("kind"), n, np.int8),
            status=_column(data.get("status"), n, np.int8),
            severity=_column(data.get("severity"), n, np.int8),
            service=service,
            name=(
                _column(data["name"], n, np.int32) if "name" in data else bound["event_name"].copy()
            ),
            rpc_service=bound["rpc_service"],
            rpc_method=bound["rpc_method"],
            http_method=bound["http_method"],
            http_route=bound["http_route"],
            messaging_destination=bound["messaging_destination"],
            event_name=bound["event_name"],
            body=_column(data.get("body"), n, np.int32),
            value=_column(data.get("value"), n, np.float64, NAN),
            ex_trace_hi=_column(data.get("ex_trace_hi"), n, np.uint64),
            ex_trace_lo=_column(data.get("ex_trace_lo"), n, np.uint64),
            ex_span_id=_column(data.get("ex_span_id"), n, np.uint64),
            attr={k: dense[k] for k in self.attribute_keys},
            attr_offsets=offsets,
            attr_keys=self._keys,
            attr_values=self._values,
            attr_numbers=self._numbers,
        )

    def _resource_columns(self, n: int) -> tuple[I32, dict[str, I32]]:
        """Service and resource-level dense attribute codes, repeated over each run's rows."""
        width = 1 + len(self.attribute_keys)
        if not self._run_rows:  # a document without resources
            self.start_resource({}, 0)
        codes = np.asarray(self._run_codes, np.int32).reshape(len(self._run_rows), width)
        ends = [*self._run_rows[1:], n]
        lengths = np.asarray([e - b for b, e in zip(self._run_rows, ends, strict=True)], np.int64)
        if lengths.sum() != n or (len(lengths) and self._run_rows[0] != 0):
            raise AssertionError("resource runs do not cover the rows")
        service = np.repeat(codes[:, 0], lengths)
        # Most keys are on no resource and on few items: their columns share one read-only
        # zero column until a hit is written (``_scatter`` copies it then).
        used = cast("list[bool]", codes.any(axis=0).tolist())
        zero = np.zeros(n, np.int32)
        zero.flags.writeable = False
        dense = {
            k: np.repeat(codes[:, 1 + j], lengths) if used[1 + j] else zero
            for j, k in enumerate(self.attribute_keys)
        }
        return service, dense

    def _scatter(self, n: int, dense: dict[str, I32]) -> dict[str, I32]:
        """Binding columns from the hits, and item-level hits over the dense columns."""
        bound = {c: np.zeros(n, np.int32) for c in BINDING_KEYS}
        targets = self._targets
        # Worst-ranked keys first, so the best key present on an item is written last.
        for slot, rows, codes in sorted(self._hits, key=lambda h: -targets[h[0]][1]):
            column = targets[slot][0]
            if column.startswith("attr:"):
                target = dense[column[5:]]
                if not target.flags.writeable:  # the shared zero column
                    target = dense[column[5:]] = np.zeros(n, np.int32)
            else:
                target = bound[column]
            target[rows] = codes
        return bound


_G = TypeVar("_G", bound=np.generic)


def _column(
    values: Sequence[Any] | npt.NDArray[Any] | None, n: int, dtype: type[_G], fill: float = 0
) -> npt.NDArray[_G]:
    """A column as numpy, or ``fill`` everywhere when the signal has no such column."""
    if values is None:
        return np.full(n, fill, dtype)
    if len(values) != n:
        raise AssertionError("a decoder set a column for some rows only")
    return np.asarray(values, dtype)
