"""Correlation of telemetry to spec nodes: rules, joins, heuristic features and kernels."""
