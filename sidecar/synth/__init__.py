"""Synthetic inputs with known answers.

Spec trees of any size (:mod:`~sidecar.synth.spec_tree`), and labelled telemetry of a spec'd
system with injected drift (:mod:`~sidecar.synth.telemetry`): the bookshop
(:mod:`~sidecar.synth.bookshop`), its spec tree, its traffic and metrics as OTLP JSON, and one
ground-truth label per item.
"""
