"""OTLP protobuf (export requests, and the collector file exporter's proto files) into batches.

``Export{Trace,Logs,Metrics}ServiceRequest`` and ``TracesData``/``LogsData``/``MetricsData``
are the same message on the wire (field 1: the resource list), so one decoder reads both.
Rows, columns and their rules are the JSON decoder's (see ``otlp_json``); the batches of the
same telemetry in either encoding are equal.

Files: the collector's file exporter (opentelemetry-collector-contrib ``exporter/fileexporter``,
v0.161.0) with ``format: proto`` writes each export as a marshalled ``TracesData``,
``LogsData`` or ``MetricsData`` preceded by its length as a 4-byte big-endian unsigned
integer, messages back to back. With ``compression: zstd`` each message is compressed before
it is framed (or, behind the alpha ``exporter.file.nativeCompression`` gate, the whole file is
one zstd stream); Python 3.11 has no zstd, so those are reported, not read. A file that is not
such a sequence is read as one raw message (what an SDK or ``protoc --encode`` writes). The
file does not say which signal it holds: the first item's wire fields tell (a span has fixed64
times at fields 7/8, a log record at fields 1/11, a metric a data message at 5/7/9/10/11), or
the caller says.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

# google.protobuf ships no type stubs (types-protobuf is not a dependency).
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from sidecar.decode.columns import Columns
from sidecar.decode.gcpause import paused_gc
from sidecar.decode.problems import OnError, OtlpDecodeError, report
from sidecar.decode.proto_signals import FIELDS, decode_resources, find_defect
from sidecar.evidence.batch import EvidenceBatch, Signal, StringPool

#: What :func:`decode_message` takes.
OtlpMessage = (
    TracesData | LogsData | MetricsData | ExportTraceServiceRequest | ExportLogsServiceRequest
    | ExportMetricsServiceRequest
)  # fmt: skip

_MESSAGES: dict[Signal, type[TracesData] | type[LogsData] | type[MetricsData]] = {
    Signal.SPAN: TracesData,
    Signal.LOG: LogsData,
    Signal.METRIC: MetricsData,
}
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_PREFIX = 4


@dataclass(slots=True)
class ProtoMessage:
    """One message of a file: its bytes, its signal and where it was."""

    source: str
    index: int
    offset: int
    signal: Signal
    data: bytes

    @property
    def position(self) -> str:
        """Human text for errors: ``message 2 (byte 1234)``."""
        return _position(self.index, self.offset)


def decode_request(
    data: bytes,
    signal: Signal,
    attribute_keys: Sequence[str],
    pool: StringPool | None = None,
    *,
    source: str = "<request>",
    position: str = "message 1",
) -> EvidenceBatch:
    """A serialized export request (or TracesData/LogsData/MetricsData) of ``signal``."""
    kind = _MESSAGES[signal]
    try:
        message = kind.FromString(data)
    except DecodeError as exc:
        # upb says "Error parsing message with type '<full name>': <what>"; keep the what.
        detail = str(exc).rsplit("': ", 1)[-1]
        reason = f"not a valid {kind.DESCRIPTOR.name} message (DecodeError: {detail})"
        raise OtlpDecodeError(source, position, reason) from exc
    return decode_message(message, attribute_keys, pool, source=source, position=position)


def decode_message(
    message: OtlpMessage,
    attribute_keys: Sequence[str],
    pool: StringPool | None = None,
    *,
    source: str = "<request>",
    position: str = "message 1",
) -> EvidenceBatch:
    """A parsed export request or TracesData/LogsData/MetricsData as a batch."""
    signal = signal_of(message)
    cols = Columns(attribute_keys, pool)
    try:
        with paused_gc():
            rows = decode_resources(signal, getattr(message, FIELDS[signal][0]), cols)
        return cols.build(signal, rows)
    except (ValueError, OverflowError) as exc:
        defect = find_defect(message, signal)
        if defect is None:  # the checks and the decoder disagree: still say something
            raise OtlpDecodeError(source, position, f"cannot decode ({exc})") from exc
        where, reason = defect
        raise OtlpDecodeError(source, f"{position}, {where}", reason) from exc


def signal_of(message: OtlpMessage) -> Signal:
    """The signal of a parsed OTLP message, from its top-level field."""
    fields = message.DESCRIPTOR.fields_by_name
    for signal, (top, _, _) in FIELDS.items():
        if top in fields:
            return signal
    raise TypeError(
        f"{message.DESCRIPTOR.full_name} is not an OTLP traces, logs or metrics message"
    )


def iter_messages(
    path: Path, signal: Signal | None = None, on_error: OnError | None = None
) -> Iterator[ProtoMessage]:
    """The messages of a file in file order (signal sniffed unless given).

    A broken frame raises :class:`OtlpDecodeError`, or with ``on_error`` is reported there;
    a broken length prefix ends the file (nothing after it can be found again).
    """
    source = str(path)
    for item in _frames(source, path.read_bytes()):
        if isinstance(item, OtlpDecodeError):
            report(item, on_error)
            continue
        index, offset, data = item
        found = signal if signal is not None else sniff_signal(data)
        if data.startswith(_ZSTD_MAGIC):
            reason = "zstd-compressed message (fileexporter compression: zstd); not supported"
        elif found is None:
            reason = (
                "cannot tell whether this holds spans, log records or metrics (malformed, "
                "empty, or items without times or data); give the signal"
            )
        else:
            yield ProtoMessage(source, index, offset, found, data)
            continue
        report(OtlpDecodeError(source, _position(index, offset), reason), on_error)


def _position(index: int, offset: int) -> str:
    return f"message {index} (byte {offset})"


def decode_proto_files(
    paths: Iterable[Path],
    attribute_keys: Sequence[str],
    pool: StringPool | None = None,
    on_error: OnError | None = None,
    signal: Signal | None = None,
) -> Iterator[tuple[ProtoMessage, EvidenceBatch]]:
    """Every message of every file with its batch; with ``on_error``, bad ones are skipped."""
    for path in paths:
        for message in iter_messages(path, signal, on_error):
            try:
                batch = decode_request(
                    message.data,
                    message.signal,
                    attribute_keys,
                    pool,
                    source=message.source,
                    position=message.position,
                )
            except OtlpDecodeError as exc:
                report(exc, on_error)
                continue
            yield message, batch


def _frames(source: str, data: bytes) -> Iterator[tuple[int, int, bytes] | OtlpDecodeError]:
    """(index, offset, bytes) of each message; an error where the framing breaks."""
    if not data:
        return
    if data.startswith(_ZSTD_MAGIC):
        reason = "zstd-compressed file (fileexporter native compression); decompress it first"
        yield OtlpDecodeError(source, "byte 0", reason)
        return
    # A raw message starts with its field-1 tag (0x0a); a frame's first byte is 0 for any
    # message under 16 MiB. Larger frames are recognised by prefixes that tile the file.
    if data[0] != 0 and not _tiles(data):
        yield 1, 0, data
        return
    offset, index = 0, 1
    while offset < len(data):
        at = _position(index, offset)
        if len(data) - offset < _PREFIX:
            yield OtlpDecodeError(
                source, at, f"truncated length prefix ({len(data) - offset} bytes)"
            )
            return
        size = int.from_bytes(data[offset : offset + _PREFIX], "big")
        start = offset + _PREFIX
        if start + size > len(data):
            reason = f"truncated: the length prefix says {size} bytes, {len(data) - start} remain"
            yield OtlpDecodeError(source, at, reason)
            return
        yield index, start, data[start : start + size]
        offset, index = start + size, index + 1


def _tiles(data: bytes) -> bool:
    """Whether 4-byte big-endian length prefixes split the data exactly."""
    offset = 0
    while offset + _PREFIX <= len(data):
        offset += _PREFIX + int.from_bytes(data[offset : offset + _PREFIX], "big")
    return offset == len(data)


def sniff_signal(data: bytes) -> Signal | None:
    """Which signal a serialized TracesData/LogsData/MetricsData holds, from its first item."""
    try:
        for resource in _nested(data, 0, len(data), 1):
            for scope in _nested(data, *resource, 2):
                for item in _nested(data, *scope, 2):
                    return _classify({(n, w) for n, w, _, _ in _fields(data, *item)})
    except ValueError:
        return None
    return None


def _classify(fields: set[tuple[int, int]]) -> Signal | None:
    # (field number, wire type): 1 is fixed64, 2 length-delimited, 0 varint, 5 fixed32.
    if fields & {(7, 1), (8, 1)}:  # Span start/end times
        return Signal.SPAN
    if fields & {(1, 1), (11, 1), (2, 0), (8, 5)}:  # LogRecord times, severity, flags
        return Signal.LOG
    if fields & {(5, 2), (7, 2), (9, 2), (10, 2), (11, 2)}:  # Metric data
        return Signal.METRIC
    return None


def _nested(data: bytes, start: int, end: int, number: int) -> Iterator[tuple[int, int]]:
    """The (start, end) of each length-delimited field ``number`` in data[start:end]."""
    for n, wire, a, b in _fields(data, start, end):
        if n == number and wire == 2:
            yield a, b


def _fields(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(number, wire type, value start, value end) of each field; ValueError if malformed."""
    pos = start
    while pos < end:
        key, pos = _varint(data, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, after = _varint(data, pos, end)
        elif wire == 1:
            after = pos + 8
        elif wire == 2:
            size, pos = _varint(data, pos, end)
            after = pos + size
        elif wire == 5:
            after = pos + 4
        else:
            raise ValueError("unsupported wire type")
        if after > end or number == 0:
            raise ValueError("field runs past its message")
        yield number, wire, pos, after
        pos = after


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")
