"""How decoders report a document they cannot read (the error itself is in sidecar.errors)."""

from __future__ import annotations

from collections.abc import Callable

from sidecar.errors import OtlpDecodeError

__all__ = ["OnError", "OtlpDecodeError", "report"]


#: Where a file reader reports a bad document or message instead of raising it.
OnError = Callable[[OtlpDecodeError], None]


def report(error: OtlpDecodeError, on_error: OnError | None) -> None:
    """Raise ``error``, or hand it to ``on_error`` so the caller goes on with the next one."""
    if on_error is None:
        raise error
    on_error(error)
