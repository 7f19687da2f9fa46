"""Runtime behavior correlation sidecar: spec truth chain, correlation and drift."""

__version__ = "0.1.0"
