"""Decoders: OTLP JSON and protobuf into the columnar evidence batch."""

from sidecar.decode.otlp_json import (
    JsonDocument,
    decode_document,
    decode_json_files,
    iter_documents,
    iter_items,
)
from sidecar.decode.otlp_proto import (
    ProtoMessage,
    decode_message,
    decode_proto_files,
    decode_request,
    iter_messages,
    sniff_signal,
)
from sidecar.decode.problems import OtlpDecodeError

__all__ = [
    "JsonDocument",
    "OtlpDecodeError",
    "ProtoMessage",
    "decode_document",
    "decode_json_files",
    "decode_message",
    "decode_proto_files",
    "decode_request",
    "iter_documents",
    "iter_items",
    "iter_messages",
    "sniff_signal",
]
