"""Reading the runtime fields of an operation, shared by manifests and SEA annotations.

A manifest operation and a SEA ``Flow`` with ``@runtime``/``@budget``/``@calls``/``@steps``/
``@attributes``/``@deprecated`` carry the same fields (SPEC-FORMAT.md). Both parsers turn their
input into the manifest's shape (a mapping with ``match``, ``budgets``, ``calls`` ...) and call
:func:`read_operation`, so the two formats cannot drift apart in what they accept.

Only types and shapes are checked here; ranges and cross-references are validation's job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sidecar.spec.model import (
    Binding,
    Budget,
    EdgeKind,
    Location,
    NodeKind,
    OperationSpec,
    Problem,
    Reference,
    SpecEdge,
    qualify,
)

BUDGET_KEYS = ("p50_ms", "p95_ms", "p99_ms", "error_rate")
OPERATION_KINDS = ("command", "query", "event-handler", "internal")
OPERATION_KEYS = (
    "flow",
    "kind",
    "service",
    "match",
    "aliases",
    "budgets",
    "attributes",
    "calls",
    "requires_calls",
    "steps",
    "policies",
    "deprecated",
)
MATCH_KEYS = ("span_name", "rpc", "http", "messaging", "log", "log_event", "metric")

LocOf = Callable[[str], Location]


@dataclass(slots=True)
class FieldReader:
    """Collects problems while reading one element; ``owner`` prefixes every message."""

    owner: str
    loc_of: LocOf
    problems: list[Problem] = field(default_factory=list)
    #: How a field is named where the user wrote it (``calls`` in a manifest, ``@calls`` in SEA).
    label: Callable[[str], str] = lambda key: key

    def problem(self, key: str, message: str) -> None:
        """Record a problem about ``key``."""
        self.problems.append(Problem.at(self.loc_of(key), f"{self.owner}: {message}"))

    def string(self, data: Mapping[str, Any], key: str) -> str | None:
        """An optional string field."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        self.problem(key, f"'{self.label(key)}' must be a string, got {type_name(value)}")
        return None

    def strings(self, data: Mapping[str, Any], key: str) -> tuple[str, ...]:
        """An optional list of strings (a single string is accepted as a list of one)."""
        value = data.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        self.problem(key, f"'{self.label(key)}' must be a list of strings, got {type_name(value)}")
        return ()

    def number(self, data: Mapping[str, Any], key: str) -> float | None:
        """An optional number field."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        self.problem(key, f"'{self.label(key)}' must be a number, got {type_name(value)}")
        return None

    def mapping(self, data: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
        """An optional mapping field."""
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, Mapping):
            return value
        self.problem(key, f"'{self.label(key)}' must be a mapping, got {type_name(value)}")
        return None

    def unknown_keys(
        self, data: Mapping[str, Any], allowed: tuple[str, ...], where: str = ""
    ) -> None:
        """Report keys outside ``allowed`` (typos would otherwise be silently ignored)."""
        what = f"unknown {where} key" if where else "unknown key"
        for key in data:
            if key not in allowed:
                self.problem(str(key), f"{what} '{key}' (expected one of {', '.join(allowed)})")


def type_name(value: object) -> str:
    """A user-facing name for a parsed value's type."""
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def read_bindings(reader: FieldReader, match: Any) -> tuple[Binding, ...]:
    """Read ``match``: one mapping, or a list of alternatives."""
    if match is None:
        return ()
    items = match if isinstance(match, list) else [match]
    out: list[Binding] = []
    for item in items:
        if not isinstance(item, Mapping):
            reader.problem("match", f"'match' must be a mapping, got {type_name(item)}")
            continue
        binding = _read_binding(reader, item)
        if binding.is_empty():
            reader.problem("match", "'match' has no binding (span_name, rpc, http, ...)")
        else:
            out.append(binding)
    return tuple(out)


def _read_binding(reader: FieldReader, m: Mapping[str, Any]) -> Binding:
    reader.unknown_keys(m, MATCH_KEYS, "match")
    rpc_service = rpc_method = None
    rpc = m.get("rpc")
    if isinstance(rpc, str):
        rpc_service, _, rpc_method = rpc.strip("/").rpartition("/")
        if not rpc_service or not rpc_method:
            reader.problem("rpc", f"rpc '{rpc}' must be 'package.Service/Method'")
            rpc_service = rpc_method = None
    elif rpc is not None:
        rpc_map = reader.mapping(m, "rpc") or {}
        rpc_service = reader.string(rpc_map, "service")
        rpc_method = reader.string(rpc_map, "method")
    http = reader.mapping(m, "http") or {}
    messaging = reader.mapping(m, "messaging") or {}
    log = reader.mapping(m, "log") or {}
    http_method = reader.string(http, "method")
    return Binding(
        span_name=reader.string(m, "span_name"),
        rpc_service=rpc_service,
        rpc_method=rpc_method,
        http_method=http_method.upper() if http_method else None,
        http_route=reader.string(http, "route"),
        messaging_destination=reader.string(messaging, "destination"),
        messaging_operation=reader.string(messaging, "operation"),
        log_event=reader.string(log, "event_name") or reader.string(m, "log_event"),
        metric_name=reader.string(m, "metric"),
    )


def read_budget(reader: FieldReader, value: Any) -> Budget | None:
    """Read ``budgets`` (types only; validation checks ranges)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        reader.problem(
            "budgets", f"'{reader.label('budgets')}' must be a mapping, got {type_name(value)}"
        )
        return None
    reader.unknown_keys(value, BUDGET_KEYS, "budget")
    return Budget(**{k: reader.number(value, k) for k in BUDGET_KEYS})


def read_operation(
    data: Mapping[str, Any],
    *,
    name: str,
    context: str,
    loc: Location,
    source: str,
    owner: str,
    loc_of: LocOf,
    label: Callable[[str], str] = lambda key: key,
) -> tuple[OperationSpec, list[Reference], list[Problem]]:
    """Build an :class:`OperationSpec` and the references it makes from a manifest-shaped mapping.

    ``owner`` prefixes messages (``operation 'PlaceOrder'`` or ``Flow 'PlaceOrder'``);
    ``label`` names a field as the user wrote it (``calls`` in a manifest, ``@calls`` in SEA).
    """
    reader = FieldReader(owner, loc_of, label=label)
    flow_id = qualify(name, context, NodeKind.FLOW)
    kind = reader.string(data, "kind")
    if kind is not None and kind not in OPERATION_KINDS:
        reader.problem("kind", f"kind '{kind}' is not one of {', '.join(OPERATION_KINDS)}")
    attributes = reader.mapping(data, "attributes") or {}
    if attributes:
        reader.unknown_keys(attributes, ("required", "forbidden"), "attributes")
    deprecated, reason = _read_deprecated(reader, data.get("deprecated"))
    op = OperationSpec(
        flow_id=flow_id,
        context=context,
        loc=loc,
        source=source,
        service=reader.string(data, "service"),
        kind=kind,
        bindings=read_bindings(reader, data.get("match")),
        aliases=reader.strings(data, "aliases"),
        budget=read_budget(reader, data.get("budgets")),
        required_attributes=reader.strings(attributes, "required"),
        forbidden_attributes=reader.strings(attributes, "forbidden"),
        calls=tuple(qualify(c, context, NodeKind.FLOW) for c in reader.strings(data, "calls")),
        requires_calls=tuple(
            qualify(c, context, NodeKind.FLOW) for c in reader.strings(data, "requires_calls")
        ),
        steps=tuple(qualify(c, context, NodeKind.FLOW) for c in reader.strings(data, "steps")),
        policies=tuple(
            qualify(p, context, NodeKind.POLICY) for p in reader.strings(data, "policies")
        ),
        deprecated=deprecated,
        deprecated_reason=reason,
        field_locs={k: loc_of(k) for k in data if isinstance(k, str)},
    )
    refs: list[Reference] = []
    edge_kinds = {
        "calls": EdgeKind.CALLS,
        "policies": EdgeKind.GOVERNED_BY,
        "requires_calls": None,
        "steps": None,
    }
    for key, edge_kind in edge_kinds.items():
        at = op.loc_of(key)
        for target in getattr(op, key):
            edge = SpecEdge(flow_id, target, edge_kind, at) if edge_kind else None
            refs.append(Reference(target, at, f"{owner}: {label(key)}", edge))
    return op, refs, reader.problems


def _read_deprecated(reader: FieldReader, value: Any) -> tuple[bool, str | None]:
    if value is None or value is False:
        return False, None
    if value is True:
        return True, None
    if isinstance(value, str):
        return True, value
    if isinstance(value, Mapping):
        reason = value.get("reason") or value.get("replacement")
        return bool(value.get("deprecated", True)), str(reason) if reason else None
    reader.problem(
        "deprecated",
        f"'{reader.label('deprecated')}' must be true/false or a reason, got {value!r}",
    )
    return False, None
