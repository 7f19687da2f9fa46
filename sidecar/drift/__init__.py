"""Drift detection: item, trace and rate checks, the learned baseline, PII, classification."""
