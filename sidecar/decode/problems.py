"""What a decoder raises for telemetry it cannot read (moves into sidecar/errors.py later)."""

from __future__ import annotations

from collections.abc import Callable

from sidecar.errors import BehaviorError


class OtlpDecodeError(BehaviorError):
    """One OTLP document or message cannot be decoded; says where and why.

    ``source`` is the file name (or ``<request>``), ``position`` is human text such as
    ``line 3`` or ``line 1, resourceSpans[0].scopeSpans[1].spans[4].traceId``.
    """

    def __init__(self, source: str, position: str, reason: str) -> None:
        self.source = source
        self.position = position
        self.reason = reason
        super().__init__(f"{source}: {position}: {reason}")

    def __reduce__(self) -> tuple[type[OtlpDecodeError], tuple[str, str, str]]:
        # Keeps the error picklable (worker processes, dead-letter records).
        return type(self), (self.source, self.position, self.reason)


#: Where a file reader reports a bad document or message instead of raising it.
OnError = Callable[[OtlpDecodeError], None]


def report(error: OtlpDecodeError, on_error: OnError | None) -> None:
    """Raise ``error``, or hand it to ``on_error`` so the caller goes on with the next one."""
    if on_error is None:
        raise error
    on_error(error)
