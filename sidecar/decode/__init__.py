"""Decoders: OTLP JSON, OTLP protobuf and the processor's projection into the evidence batch."""

from sidecar.decode.otlp_json import (
    JsonDocument,
    decode_document,
    decode_json_files,
    iter_documents,
    iter_items,
)
from sidecar.decode.otlp_message import to_message
from sidecar.decode.otlp_proto import (
    ProtoMessage,
    decode_message,
    decode_proto_files,
    decode_request,
    iter_messages,
    sniff_signal,
)
from sidecar.decode.problems import OtlpDecodeError
from sidecar.decode.projection import decode_projection

__all__ = [
    "JsonDocument",
    "OtlpDecodeError",
    "ProtoMessage",
    "decode_document",
    "decode_json_files",
    "decode_message",
    "decode_projection",
    "decode_proto_files",
    "decode_request",
    "iter_documents",
    "iter_items",
    "iter_messages",
    "sniff_signal",
    "to_message",
]
