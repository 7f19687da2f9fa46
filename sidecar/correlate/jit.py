"""The numba compile policy shared by the kernel modules (:mod:`sidecar.correlate.kernels`,
:mod:`sidecar.correlate.row_kernels`).

One place for how every kernel compiles: ``numba.njit`` with ``cache=True`` (the machine code is
kept in ``__pycache__``, so a process pays the compile only when the source or numba changes) and
``nogil=True`` (an engine may run kernels on several threads). Separate so that both kernel
modules use the same policy without one importing the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def jit(fn: _Fn) -> _Fn:
    """``numba.njit`` with on-disk caching and the GIL released; keeps ``fn``'s type for mypy."""
    return cast(_Fn, numba.njit(cache=True, nogil=True)(fn))
