"""In-memory fakes of the sidecar's ports, for unit tests (integration tests use real servers)."""

from __future__ import annotations

from sidecar.errors import IndexNotFound
from sidecar.spec_index.codec import decode_index, encode_index
from sidecar.spec_index.index import RuntimeIndex


class InMemoryIndexCache:
    """The index cache without Redis: payloads go through the real codec."""

    def __init__(self) -> None:
        self.payloads: dict[str, bytes] = {}
        self.current: str | None = None

    def publish(self, index: RuntimeIndex) -> bool:
        """Store an index and make it current."""
        self.payloads[index.spec_hash] = encode_index(index)
        moved = self.current != index.spec_hash
        self.current = index.spec_hash
        return moved

    def current_hash(self) -> str | None:
        """The hash replicas should serve."""
        return self.current

    def load(self, spec_hash: str) -> RuntimeIndex:
        """The index stored under a hash."""
        if spec_hash not in self.payloads:
            raise IndexNotFound(spec_hash)
        return decode_index(self.payloads[spec_hash], expected_hash=spec_hash)

    def load_current(self) -> RuntimeIndex:
        """The index the current pointer names."""
        if self.current is None:
            raise IndexNotFound("nothing published")
        return self.load(self.current)
