"""Annotation writers: the engine's results written back onto the telemetry."""

from sidecar.annotate.otlp_json_writer import annotate_document, write_jsonl
from sidecar.annotate.projection_writer import encode_annotations

__all__ = ["annotate_document", "encode_annotations", "write_jsonl"]
