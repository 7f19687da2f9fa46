"""The index a running sidecar serves, swapped atomically and only for a good one."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sidecar.errors import SpecError, SpecIndexError
from sidecar.spec_index.index import RuntimeIndex

log = logging.getLogger(__name__)

Listener = Callable[[RuntimeIndex], None]


class IndexHolder:
    """Holds the current runtime index; a failed candidate never replaces a good one."""

    def __init__(self, initial: RuntimeIndex, origin: str = "initial") -> None:
        self._current = initial
        self._lock = threading.Lock()
        self._listeners: list[Listener] = []
        self.origin = origin
        self.reloads = 0
        self.reload_failures = 0
        self.last_error: str | None = None

    @property
    def current(self) -> RuntimeIndex:
        """The index to use now (a plain attribute read: safe from any thread)."""
        return self._current

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every new index (e.g. to tell the processor its new keys)."""
        self._listeners.append(listener)

    def offer(self, load: Callable[[], RuntimeIndex], origin: str) -> bool:
        """Try a candidate; returns True if it became current, False if the last good stays."""
        try:
            candidate = load()
        except (SpecIndexError, SpecError) as exc:
            with self._lock:
                self.reload_failures += 1
                self.last_error = f"{origin}: {exc}"
            log.error(
                "keeping index %s: candidate from %s rejected: %s",
                self._current.spec_hash[:12],
                origin,
                exc,
            )
            return False
        with self._lock:
            if candidate.spec_hash == self._current.spec_hash:
                return False
            self._current = candidate
            self.origin = origin
            self.reloads += 1
            self.last_error = None
        log.info("now serving index %s from %s", candidate.spec_hash[:12], origin)
        for listener in self._listeners:
            listener(candidate)
        return True
