"""Heuristic correlation: name features and the numba similarity kernels."""
