"""Semantic-convention attribute keys every decoder reads, with their older fallbacks."""

from __future__ import annotations

from sidecar.evidence.batch import BINDING_COLUMNS

#: Resource attribute that names the service of every item under the resource.
SERVICE_NAME = "service.name"

#: Log attribute naming an event (the LogRecord ``eventName`` field wins when both are set).
EVENT_NAME = "event.name"

#: The prefix of the contract attributes the engine writes back (a writer replaces them).
BEHAVIOR_PREFIX = "behavior."

#: For each binding column, the item attribute keys that fill it, best first: the current
#: semantic convention, then the names older instrumentations still emit.
BINDING_KEYS: dict[str, tuple[str, ...]] = {
    "rpc_service": ("rpc.service",),
    "rpc_method": ("rpc.method",),
    "http_method": ("http.request.method", "http.method"),
    "http_route": ("http.route",),
    "messaging_destination": ("messaging.destination.name", "messaging.destination"),
    "event_name": (EVENT_NAME,),
}

assert tuple(BINDING_KEYS) == BINDING_COLUMNS, "every binding column needs its keys"
