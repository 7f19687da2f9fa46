"""What the sidecar asks the processor to project (``Projection`` in proto/behavior/v1)."""

from __future__ import annotations

import hashlib
import json

from sidecar.decode.semconv import BINDING_KEYS, EVENT_NAME, SERVICE_NAME
from sidecar.protocol import correlation_pb2 as pb
from sidecar.spec_index.compile import BASE_ATTRIBUTE_KEYS
from sidecar.spec_index.index import RuntimeIndex


def projection_keys(index: RuntimeIndex) -> tuple[str, ...]:
    """Every attribute key the sidecar reads: the index's, the bindings', service.name, sea.*."""
    binding = (k for keys in BINDING_KEYS.values() for k in keys)
    keys = {*index.attribute_keys, *binding, SERVICE_NAME, EVENT_NAME, *BASE_ATTRIBUTE_KEYS}
    return tuple(sorted(keys))


def projection_for(index: RuntimeIndex, all_attributes: bool) -> pb.Projection:
    """The projection for an index; its version is a stable hash of what it asks for."""
    keys = projection_keys(index)
    text = json.dumps([all_attributes, keys], separators=(",", ":"))
    digest = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    # 0 means "no projection" in requests, so it is never a version.
    return pb.Projection(version=digest or 1, all_attributes=all_attributes, attribute_keys=keys)
