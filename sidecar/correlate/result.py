"""The correlation of one shape (before it is broadcast to the rows that share it)."""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.evidence.annotations import MatchType


@dataclass(frozen=True, slots=True)
class Correlation:
    """Which spec node a shape implements, how sure we are, and why."""

    node: str = ""
    context: str = ""
    match: MatchType = MatchType.NONE
    confidence: float = 0.0
    rules: tuple[str, ...] = ()
    #: Matched an ignore rule: declared benign (health checks and the like).
    ignored: bool = False
    #: Why the item could not be correlated fully (recorded, not raised).
    reason: str | None = None


NO_MATCH = Correlation()
