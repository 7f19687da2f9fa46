"""The compiled runtime index: what the correlator and drift detectors look things up in.

Immutable (frozen pydantic models), JSON-serialisable, identified by the content hash of the
spec tree it was compiled from. Lookups the hot path makes are plain dicts keyed by strings:
``span[service][span_name]``, ``rpc["pkg.Service/Method"]``, ``http[service]["GET /route"]``.
An empty-string service key means "any service".
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

#: Bumped when the shape of the index changes; a replica refuses an index of another schema.
INDEX_SCHEMA_VERSION = 1

ANY_SERVICE = ""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeEntry(_Frozen):
    """A spec node as the runtime needs it: kind, title, context."""

    kind: str
    title: str = ""
    context: str | None = None
    deprecated: bool = False


class BudgetEntry(_Frozen):
    """Latency and error budgets of an operation."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None


class OperationEntry(_Frozen):
    """Everything the runtime checks about one flow."""

    flow_id: str
    context: str
    name: str
    services: tuple[str, ...] = ()
    kind: str | None = None
    aliases: tuple[str, ...] = ()
    budget: BudgetEntry | None = None
    required_attributes: tuple[str, ...] = ()
    forbidden_attributes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    requires_calls: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    deprecated: bool = False
    deprecated_reason: str | None = None


class PolicyEntry(_Frozen):
    """A runtime-checkable policy."""

    node_id: str
    context: str
    when_flow: str | None = None
    assertion: str | None = None
    attribute_keys: tuple[str, ...] = ()


class MetricEntry(_Frozen):
    """A declared metric with its allowed range."""

    node_id: str
    context: str
    unit: str | None = None
    min: float | None = None
    max: float | None = None


class IgnoreEntry(_Frozen):
    """Telemetry declared benign by a context (health checks and the like)."""

    context: str
    span_name: str | None = None
    http_route: str | None = None
    http_method: str | None = None
    rpc: str | None = None


class PrivacyEntry(_Frozen):
    """PII attributes and detectors of one context."""

    pii_attributes: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()


class Bindings(_Frozen):
    """Deterministic bindings from telemetry fields to spec node ids."""

    span: dict[str, dict[str, str]] = {}
    rpc: dict[str, str] = {}
    http: dict[str, dict[str, str]] = {}
    messaging: dict[str, str] = {}
    log_event: dict[str, str] = {}
    metric: dict[str, str] = {}


class RuntimeIndex(_Frozen):
    """The whole compiled index of one spec tree."""

    schema_version: int = INDEX_SCHEMA_VERSION
    spec_hash: str
    nodes: dict[str, NodeEntry]
    operations: dict[str, OperationEntry]
    bindings: Bindings
    #: service.name -> context
    services: dict[str, str]
    metrics: dict[str, MetricEntry]
    policies: dict[str, PolicyEntry]
    privacy: dict[str, PrivacyEntry]
    ignore: tuple[IgnoreEntry, ...]
    #: Span/log/metric attribute keys the correlator reads; the processor projects only these.
    attribute_keys: tuple[str, ...]

    def check(self) -> list[str]:
        """Internal consistency problems (an index that fails this is never served)."""
        problems: list[str] = []
        if self.schema_version != INDEX_SCHEMA_VERSION:
            problems.append(
                f"index schema {self.schema_version}, this sidecar reads {INDEX_SCHEMA_VERSION}"
            )
        targets: list[tuple[str, str]] = [("rpc", t) for t in self.bindings.rpc.values()]
        for kind, table in (("span", self.bindings.span), ("http", self.bindings.http)):
            targets += [(kind, t) for by_name in table.values() for t in by_name.values()]
        for kind, flat in (
            ("messaging", self.bindings.messaging),
            ("log_event", self.bindings.log_event),
            ("metric", self.bindings.metric),
        ):
            targets += [(kind, t) for t in flat.values()]
        problems += [
            f"{kind} binding points at unknown node '{t}'"
            for kind, t in targets
            if t not in self.nodes
        ]
        for op in self.operations.values():
            problems += [
                f"operation '{op.flow_id}' refers to unknown node '{ref}'"
                for ref in (*op.calls, *op.requires_calls, *op.steps, *op.policies)
                if ref not in self.nodes
            ]
        return problems

    def counts(self) -> dict[str, int]:
        """Sizes of the main tables (for logs and ``spec publish``)."""
        b = self.bindings
        return {
            "nodes": len(self.nodes),
            "operations": len(self.operations),
            "span_bindings": sum(len(v) for v in b.span.values()),
            "rpc_bindings": len(b.rpc),
            "http_bindings": sum(len(v) for v in b.http.values()),
            "services": len(self.services),
            "metrics": len(self.metrics),
            "policies": len(self.policies),
            "ignore_rules": len(self.ignore),
        }
