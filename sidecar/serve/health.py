"""The standard gRPC health service (grpc.health.v1) for the sidecar.

Load balancers and Kubernetes probes ask for "" (the server) or the BehaviorCorrelation
service by name; both turn NOT_SERVING when a graceful shutdown begins.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from sidecar.protocol import correlation_pb2 as pb

#: The full name health checks use for the correlation service.
SERVICE = pb.DESCRIPTOR.services_by_name["BehaviorCorrelation"].full_name


async def add_health(server: grpc.aio.Server) -> health_aio.HealthServicer:
    """Register the health service, SERVING for the server and the correlation service."""
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    for name in ("", SERVICE):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    return health
