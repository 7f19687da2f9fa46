"""One request through the core: decode the projection, run the engine, encode the response.

Synchronous and transport-free (no grpc here): the servicer runs it on its engine thread.
Everything that touches the engine (batches and index swaps) must run on that one thread,
because the engine keeps state between batches (rate windows, shape cache).
"""

from __future__ import annotations

import time

from sidecar.annotate.projection_writer import encode_annotations
from sidecar.decode.projection import decode_projection
from sidecar.engine import Engine
from sidecar.protocol import correlation_pb2 as pb
from sidecar.serve.projection_keys import projection_for
from sidecar.serve.sink import EvidenceSink, NoSink
from sidecar.spec_index.index import RuntimeIndex


class Pipeline:
    """Decoder + engine + writer, and the projection the current index asks for."""

    def __init__(
        self, engine: Engine, *, all_attributes: bool = True, sink: EvidenceSink | None = None
    ) -> None:
        self.engine = engine
        self.all_attributes = all_attributes
        self.sink: EvidenceSink = sink if sink is not None else NoSink()
        #: Replaced whole (never mutated), so other threads may read it at any time.
        self.projection = projection_for(engine.index, all_attributes)
        self.spec_version = engine.index.spec_hash

    def set_index(self, index: RuntimeIndex) -> None:
        """Serve another index (hot reload); call on the engine thread."""
        self.engine.set_index(index)
        self.projection = projection_for(index, self.all_attributes)
        self.spec_version = index.spec_hash

    def handle(
        self, request: pb.CorrelateRequest, deadline: float | None = None
    ) -> pb.CorrelateResponse | None:
        """The response to one request; None when ``deadline`` (monotonic) passed in the queue.

        Raises :class:`~sidecar.errors.ProjectionError` for a malformed request.
        """
        if deadline is not None and time.monotonic() > deadline:
            return None  # the client gave up; the work would be wasted
        batch = decode_projection(request, self.engine.index.attribute_keys)
        result = self.engine.process(batch)
        current = self.projection
        announce = current if request.projection_version != current.version else None
        response = encode_annotations(result.annotations, announce)
        self.sink.offer(batch, result)
        return response
