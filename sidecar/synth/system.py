"""The shape of a synthetic system: what its spec says and what the traffic generator runs.

A :class:`SystemModel` holds bounded contexts, deployed services, operations, events, metrics
and policies. An operation's ``plan`` is what the running code calls; its spec ``calls`` are
exactly the callees of the plan. ``renames`` are span names a re-instrumented build of the
service gives the operation: realistic renamings (``PlaceOrderHandler``, ``place_order``) that
are no binding of the spec, so only a heuristic matcher can tie them to the operation.

The system itself is :func:`sidecar.synth.bookshop.bookshop`;
:func:`sidecar.synth.spec_writer.write_system_spec` writes its spec tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Budget:
    """Latency and error budgets of an operation."""

    p95_ms: float
    p99_ms: float
    error_rate: float


@dataclass(frozen=True, slots=True)
class Call:
    """One step of an operation's plan: a call to another operation."""

    callee: str
    repeat: tuple[int, int] = (1, 1)
    probability: float = 1.0
    #: Starts together with the previous call instead of after it.
    parallel: bool = False


@dataclass(frozen=True, slots=True)
class Internal:
    """An internal span of an operation: a code step, or a database query when ``db`` is set."""

    name: str
    ms: float
    db: str = ""


@dataclass(frozen=True, slots=True)
class Operation:
    """A spec'd operation and how the running system executes it."""

    flow_id: str
    service: str
    kind: str
    budget: Budget
    #: Median own processing time (children come on top).
    self_ms: float
    span_name: str = ""
    rpc: str = ""
    http: str = ""
    messaging: str = ""
    log_event: str = ""
    aliases: tuple[str, ...] = ()
    plan: tuple[Call, ...] = ()
    requires_calls: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    #: Application attributes the code sets besides the required ones.
    sets: tuple[str, ...] = ()
    internal: tuple[Internal, ...] = ()
    #: Spec node ids of the events the operation logs.
    events: tuple[str, ...] = ()
    renames: tuple[str, ...] = ()
    #: Share of entry traffic (0 for operations only reached through calls).
    weight: float = 0.0
    deprecated: str = ""

    @property
    def context(self) -> str:
        """The bounded context (first segment of the id)."""
        return self.flow_id.split(":", 1)[0]

    @property
    def name(self) -> str:
        """The flow name (last segment of the id)."""
        return self.flow_id.rsplit(":", 1)[-1]

    @property
    def calls(self) -> tuple[str, ...]:
        """The allowed callees: every callee of the plan, in plan order."""
        return tuple(dict.fromkeys(c.callee for c in self.plan))

    @property
    def protocol(self) -> str:
        """``http``, ``grpc`` or ``messaging``: how the operation is entered."""
        return "http" if self.http else "messaging" if self.messaging else "grpc"


@dataclass(frozen=True, slots=True)
class Metric:
    """A declared metric, who exports it and the values it normally takes."""

    node_id: str
    name: str
    service: str
    unit: str
    kind: str  # gauge | sum
    normal: tuple[float, float]
    min: float | None = None
    max: float | None = None
    #: For sums: the operation whose executions it counts; for gauges: whose spans exemplify it.
    source: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """A declared event and the log event name that carries it."""

    node_id: str
    log_event: str


@dataclass(frozen=True, slots=True)
class Policy:
    """A runtime-checkable policy of one flow."""

    node_id: str
    when: str
    assertion: str


@dataclass(frozen=True, slots=True)
class Service:
    """A deployed service: its instrumentation scopes and pods."""

    name: str
    context: str
    language: str
    rpc_scope: str
    app_scope: str
    db_scope: str = ""
    version: str = "1.0.0"
    pods: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """A bounded context and the spec formats it is written in."""

    name: str
    sds: str
    title: str
    #: ``manifest`` (YAML or JSON by ``manifest_format``) or ``sea`` (flows in a SEA file).
    flows_in: str = "manifest"
    manifest_format: str = "yaml"
    pii: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SystemModel:
    """The whole synthetic system: what the spec says and what the traffic generator runs."""

    contexts: tuple[Context, ...]
    services: tuple[Service, ...]
    operations: dict[str, Operation]
    events: tuple[Event, ...]
    metrics: tuple[Metric, ...]
    policies: tuple[Policy, ...]
    service_index: dict[str, Service] = field(default_factory=dict)

    def service(self, name: str) -> Service:
        """A service by ``service.name``."""
        return self.service_index[name]

    def entry_operations(self) -> list[Operation]:
        """Operations entered from outside (positive weight), in declaration order."""
        return [op for op in self.operations.values() if op.weight > 0]
