"""Synthetic inputs with known answers: spec trees (and later labelled telemetry)."""
