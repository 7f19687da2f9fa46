"""The spec truth chain as data: nodes, edges, references, operations and problems.

Every parser (markdown, SDS YAML, SEA DSL, manifests) produces a :class:`SpecFragment` for one
file. The loader merges fragments into a :class:`SpecGraph`; validation resolves references and
checks consistency; the index compiler turns a valid graph into the runtime index.

Nothing here performs I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class NodeKind(StrEnum):
    """Kinds of spec node; document kinds keep their own ids, model kinds are qualified."""

    ADR = "adr"
    PRD = "prd"
    REQ = "req"
    SDS = "sds"
    INV = "inv"
    CONTEXT = "context"
    SERVICE = "service"
    FLOW = "flow"
    POLICY = "policy"
    EVENT = "event"
    METRIC = "metric"
    ENTITY = "entity"
    OPERATION = "operation"


#: Kinds that name a model element as ``<context>:<kind>:<Name>``.
MODEL_KINDS: frozenset[NodeKind] = frozenset(
    {
        NodeKind.FLOW,
        NodeKind.POLICY,
        NodeKind.EVENT,
        NodeKind.METRIC,
        NodeKind.ENTITY,
        NodeKind.OPERATION,
    }
)

#: Document kinds and the id prefix each one uses (``ADR-029``).
DOCUMENT_PREFIXES: dict[NodeKind, str] = {
    NodeKind.ADR: "ADR",
    NodeKind.PRD: "PRD",
    NodeKind.REQ: "REQ",
    NodeKind.SDS: "SDS",
    NodeKind.INV: "INV",
}

_DOC_ID = re.compile(r"(ADR|PRD|SDS|REQ|INV)[-_]?(\d{1,9})", re.IGNORECASE)


class EdgeKind(StrEnum):
    """Truth-chain edge kinds (SPEC-FORMAT.md, "Edges")."""

    SATISFIES = "SATISFIES"
    PART_OF = "PART_OF"
    SPECIFIED_BY = "SPECIFIED_BY"
    IN_CONTEXT = "IN_CONTEXT"
    BELONGS_TO = "BELONGS_TO"
    CALLS = "CALLS"
    GOVERNED_BY = "GOVERNED_BY"
    EMITS = "EMITS"
    SUPERSEDES = "SUPERSEDES"
    RELATED_TO = "RELATED_TO"


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a spec file: path relative to the spec root, 1-based line."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """One validation problem, printed as ``path:line: message``."""

    path: str
    line: int
    message: str

    @classmethod
    def at(cls, loc: Location, message: str) -> Problem:
        """Build a problem at a location."""
        return cls(loc.path, loc.line, message)

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {message_line(self.message)}"


def message_line(message: str) -> str:
    """Keep a problem on one line whatever the underlying error text contained."""
    return " ".join(message.split())


@dataclass(slots=True)
class SpecNode:
    """A node of the truth chain: a document, a model element, a context or a service."""

    id: str
    kind: NodeKind
    loc: Location
    title: str = ""
    context: str | None = None
    status: str | None = None
    #: Free-form properties from the source (kept for ``spec show`` and the KG).
    props: dict[str, Any] = field(default_factory=dict)
    #: Which parser declared it: "markdown", "sds-yaml", "sea", "manifest" or "implicit".
    #: The same id declared by two different origins is one node described twice (a SEA flow
    #: and its manifest operation); declared twice by the same origin it is a duplicate.
    origin: str = "implicit"


@dataclass(frozen=True, slots=True)
class SpecEdge:
    """A directed truth-chain edge ``src -kind-> dst`` declared at ``loc``."""

    src: str
    dst: str
    kind: EdgeKind
    loc: Location


@dataclass(frozen=True, slots=True)
class Reference:
    """A reference from one spec element to another id, checked by validation.

    ``what`` describes the referring element for messages, e.g. ``operation 'PlaceOrder': calls``;
    a broken reference is reported as ``{what} '{target}' is not a known spec node``.
    ``edge`` is the edge the reference creates once resolved (None for references that only
    constrain, like ``requires_calls`` or ``steps``).
    """

    target: str
    loc: Location
    what: str
    edge: SpecEdge | None = None


@dataclass(frozen=True, slots=True)
class Budget:
    """Performance budgets of an operation; None means not specified."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    error_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Binding:
    """Deterministic runtime bindings of an operation; any one suffices to match."""

    span_name: str | None = None
    rpc_service: str | None = None
    rpc_method: str | None = None
    http_method: str | None = None
    http_route: str | None = None
    messaging_destination: str | None = None
    messaging_operation: str | None = None
    log_event: str | None = None
    metric_name: str | None = None

    def is_empty(self) -> bool:
        """True when no binding field is set."""
        return all(getattr(self, f) is None for f in self.__slots__)


@dataclass(slots=True)
class OperationSpec:
    """Runtime expectations of one flow, from a SEA ``Flow`` or a manifest operation.

    The same flow may be described by both; validation compares them field by field and
    reports disagreements at both locations.
    """

    flow_id: str
    context: str
    loc: Location
    source: str  # "sea" | "manifest"
    service: str | None = None
    kind: str | None = None  # command | query | event-handler | internal
    bindings: tuple[Binding, ...] = ()
    aliases: tuple[str, ...] = ()
    budget: Budget | None = None
    required_attributes: tuple[str, ...] = ()
    forbidden_attributes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()
    requires_calls: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()
    deprecated: bool = False
    deprecated_reason: str | None = None
    #: Line of each field as written, for precise messages (field name -> Location).
    field_locs: dict[str, Location] = field(default_factory=dict)

    def loc_of(self, field_name: str) -> Location:
        """Where a field was written, or the operation's own location."""
        return self.field_locs.get(field_name, self.loc)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A declared metric and its allowed range."""

    node_id: str
    name: str
    context: str
    loc: Location
    unit: str | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A declared event and how it appears in logs or messaging."""

    node_id: str
    context: str
    loc: Location
    log_event: str | None = None
    topic: str | None = None


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """A runtime-checkable policy: a condition on a flow and an assertion."""

    node_id: str
    context: str
    loc: Location
    when_flow: str | None = None
    assertion: str | None = None
    priority: int | None = None
    #: "expr": a runtime assertion in the policy language (sidecar/spec/expr.py);
    #: "sea": a SEA domain expression, kept as text for people and tools, never evaluated.
    language: str = "expr"


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    """Telemetry declared benign (health checks and the like)."""

    context: str
    loc: Location
    span_name: str | None = None
    http_route: str | None = None
    http_method: str | None = None
    rpc_service: str | None = None
    rpc_method: str | None = None


@dataclass(frozen=True, slots=True)
class PrivacyRule:
    """Attributes that hold PII and the detectors to run, for one context."""

    context: str
    loc: Location
    pii_attributes: tuple[str, ...] = ()
    detectors: tuple[str, ...] = ()


@dataclass(slots=True)
class SpecFragment:
    """What one file contributes to the graph."""

    path: str
    nodes: list[SpecNode] = field(default_factory=list)
    edges: list[SpecEdge] = field(default_factory=list)
    refs: list[Reference] = field(default_factory=list)
    operations: list[OperationSpec] = field(default_factory=list)
    metrics: list[MetricSpec] = field(default_factory=list)
    events: list[EventSpec] = field(default_factory=list)
    policies: list[PolicySpec] = field(default_factory=list)
    ignores: list[IgnoreRule] = field(default_factory=list)
    privacy: list[PrivacyRule] = field(default_factory=list)
    #: service.name -> context, from manifests' ``behavior.services`` and SEA ``@runtime``.
    services: list[tuple[str, str, Location]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Informational notes (skipped SEA syntax and the like); never fail validation.
    notes: list[Problem] = field(default_factory=list)


def model_id(context: str, kind: NodeKind, name: str) -> str:
    """The id of a model element: ``<context>:<kind>:<Name>``."""
    return f"{context}:{kind.value}:{name}"


def context_id(name: str) -> str:
    """The id of a bounded context node."""
    return f"context:{name}"


def service_id(name: str) -> str:
    """The id of a service node (``service.name`` as the telemetry carries it)."""
    return f"service:{name}"


def canonical_document_id(value: str) -> str | None:
    """``adr-29`` -> ``ADR-029``; None when ``value`` is not a document id.

    Ids are canonical everywhere (a document's own id and every reference to it): upper-case
    prefix, leading zeros dropped, padded to three digits, so ``ADR-29``, ``adr-029`` and
    ``ADR-0029`` all name ``ADR-029`` however either side wrote the number.
    """
    match = _DOC_ID.fullmatch(value.strip())
    if match is None:
        return None
    return f"{match.group(1).upper()}-{int(match.group(2)):03d}"


def is_document_id(value: str) -> bool:
    """True for ``ADR-029``-style ids (any case, any zero padding)."""
    return canonical_document_id(value) is not None


def document_kind(value: str) -> NodeKind | None:
    """The document kind of an id like ``PRD-012``, or None."""
    canonical = canonical_document_id(value)
    return None if canonical is None else NodeKind(canonical.split("-", 1)[0].lower())


def qualify(ref: str, context: str, kind: NodeKind) -> str:
    """Turn a reference as written into a node id.

    ``payment:flow:Charge`` and ``ADR-029`` stay as they are; a bare ``Charge`` becomes
    ``<context>:<kind>:Charge``.
    """
    ref = ref.strip()
    doc = canonical_document_id(ref)
    if doc is not None:
        return doc
    if ":" in ref:
        return ref
    return model_id(context, kind, ref)
