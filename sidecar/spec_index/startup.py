"""Choosing the index a sidecar starts with: the shared cache first, the spec tree second."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from sidecar.errors import ConfigError, SpecIndexError, SpecInvalid
from sidecar.spec_index.compile import compile_spec_tree
from sidecar.spec_index.index import RuntimeIndex

log = logging.getLogger(__name__)


class IndexCache(Protocol):
    """What the sidecar needs from a shared index cache (Redis in production)."""

    def publish(self, index: RuntimeIndex) -> bool:
        """Store an index and make it current."""
        ...

    def current_hash(self) -> str | None:
        """The hash replicas should serve."""
        ...

    def load(self, spec_hash: str) -> RuntimeIndex:
        """The index stored under a hash."""
        ...

    def load_current(self) -> RuntimeIndex:
        """The index the current pointer names."""
        ...


def index_from_disk(root: Path) -> RuntimeIndex:
    """Compile a spec root; raises :class:`SpecInvalid` with every problem."""
    compiled = compile_spec_tree(root)
    if compiled.index is None:
        raise SpecInvalid(compiled.problems)
    return compiled.index


def initial_index(cache: IndexCache | None, root: Path | None) -> tuple[RuntimeIndex, str]:
    """The index to serve at start and where it came from ("redis:<hash>" or the root path)."""
    if cache is not None:
        try:
            index = cache.load_current()
            return index, f"redis:{index.spec_hash[:12]}"
        except SpecIndexError as exc:
            if root is None:
                raise
            log.warning("no usable index in the cache (%s); compiling %s", exc, root)
    if root is None:
        raise ConfigError(
            "no spec index: give a spec directory or a Redis URL with a published index"
        )
    return index_from_disk(root), str(root)
