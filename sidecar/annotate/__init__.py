"""Annotation writers: the engine's results written back onto the telemetry."""

from sidecar.annotate.otlp_json_writer import annotate_document, write_jsonl

__all__ = ["annotate_document", "write_jsonl"]
