"""Value rules both OTLP decoders share: attribute text and numbers, bodies, enums, ids, means.

An attribute value becomes one string (dictionary-encoded in the batch) and one number:

- string: itself; its number is ``float(text)`` when the text parses (``"500"`` -> 500.0);
- int: decimal text, its value as a number; double: ``"3"`` for integral values below 2**53,
  else ``repr`` (``"0.25"``, ``"1e+300"``, ``"nan"``), its value as a number;
- bool: ``"true"``/``"false"``; bytes: standard padded base64; array: the elements' texts
  joined by ``,``; kvlist: compact JSON; the empty value: absent. These have no number.

These are the rules :class:`~sidecar.evidence.batch.BatchBuilder` applies to Python values,
so a batch means the same whichever decoder built it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import TypeAlias

from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

#: An AnyValue as plain Python (kvlists as dicts; None is the empty value).
Plain: TypeAlias = "str | int | float | bool | bytes | list[Plain] | dict[str, Plain] | None"

NAN = math.nan
I64_MAX = 2**63 - 1
_LOW64 = (1 << 64) - 1

#: Enum names the JSON encoding may use instead of numbers, from the protocol's descriptors.
SPAN_KINDS: dict[str, int] = dict(trace_pb2.Span.SpanKind.items())
STATUS_CODES: dict[str, int] = dict(trace_pb2.Status.StatusCode.items())
SEVERITIES: dict[str, int] = dict(logs_pb2.SeverityNumber.items())


def enum_number(value: object, names: dict[str, int]) -> int | None:
    """A known enum value given as number or name; None when it is neither."""
    if type(value) is int:
        return value if value in names.values() else None
    if isinstance(value, str):
        return names.get(value)
    return None


def plain_text(value: Plain) -> str:
    """The attribute text of a non-string value (see the module rules)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return double_text(value)
    if isinstance(value, bytes):
        return bytes_text(value)
    if isinstance(value, list):
        return ",".join(plain_text(v) for v in value)
    if isinstance(value, dict):
        return _json(value)
    return ""


def double_text(value: float) -> str:
    """The text of a double attribute: integral values without a fraction, else ``repr``."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def plain_number(value: Plain) -> float:
    """The number of a non-string value: ints and doubles only."""
    if isinstance(value, bool):
        return NAN
    if isinstance(value, int | float):
        return float(value)
    return NAN


def text_number(text: str) -> float:
    """The number a string attribute stands for, NaN when it does not parse."""
    try:
        return float(text)
    except ValueError:
        return NAN


def body_text(value: Plain) -> str:
    """A log body as text: strings as they are, arrays and kvlists as compact JSON."""
    if isinstance(value, list | dict):
        return _json(value)
    return plain_text(value)


def _json(value: Plain) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=bytes_text)


def bytes_text(raw: bytes) -> str:
    """Bytes values are carried as standard padded base64 (the JSON encoding's own form)."""
    return base64.b64encode(raw).decode("ascii")


def base64_bytes(text: str) -> bytes | None:
    """Bytes from base64 text, standard or URL-safe, padded or not; None when it is not."""
    text = text.replace("-", "+").replace("_", "/")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def split128(value: int) -> tuple[int, int]:
    """A 128-bit trace id as (high, low) 64-bit halves."""
    return value >> 64, value & _LOW64


def point_mean(total: float | None, count: int) -> float:
    """The value of a histogram or summary point: sum / count, NaN when either is missing."""
    if total is None or count <= 0:
        return NAN
    return total / count
