"""Manifests (``*.manifest.yaml``, ``*.manifest.json``): a context's runtime expectations.

The generated-code manifest fields (``manifestVersion``, ``context``, ``model``) are kept as
properties of the context node; the optional ``behavior`` section declares services,
operations, events, metrics, ignore rules, policies and privacy rules (SPEC-FORMAT.md,
"Manifests"). Operations are read by :func:`read_operation`, the reader SEA flows share.

Only shapes are checked here; whether referenced ids exist is validation's job, so every
cross-file id becomes a :class:`Reference`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.spec.located_fields import mapping_items, required_name, string_items
from sidecar.spec.model import (
    EdgeKind,
    EventSpec,
    IgnoreRule,
    Location,
    MetricSpec,
    NodeKind,
    PolicySpec,
    PrivacyRule,
    Problem,
    Reference,
    SpecEdge,
    SpecFragment,
    SpecNode,
    context_id,
    model_id,
    qualify,
    service_id,
)
from sidecar.spec.operation_fields import (
    OPERATION_KEYS,
    FieldReader,
    read_bindings,
    read_operation,
)
from sidecar.spec.yamlpos import LineMap, load_located

TOP_KEYS = ("manifestVersion", "context", "model", "behavior")
#: Context keys listing documents the context relates to (references, so typos are caught).
DOC_KEYS = ("prdIds", "adrIds")
BEHAVIOR_KEYS = ("services", "operations", "events", "metrics", "ignore", "policies", "privacy")
EVENT_KEYS = ("id", "log", "topic")
METRIC_KEYS = ("name", "unit", "range")
IGNORE_KEYS = ("span_name", "http", "rpc")
POLICY_KEYS = ("id", "when", "assert")
#: Named elements of ``behavior``: the key that names each one and the keys it may have.
ITEM_SCHEMAS = {
    "event": ("id", EVENT_KEYS),
    "metric": ("name", METRIC_KEYS),
    "policy": ("id", POLICY_KEYS),
}
PRIVACY_KEYS = ("pii_attributes", "detectors")
DETECTORS = ("email", "credit_card", "bearer_token", "phone")

ORIGIN = "manifest"


def parse_manifest(path: str, text: str) -> SpecFragment:
    """Parse one manifest (JSON by the ``.json`` suffix, YAML otherwise); never raises."""
    doc = load_located(text, path, "json" if path.endswith(".json") else "yaml")
    fragment = SpecFragment(path, problems=doc.problems)
    if doc.data is not None:
        _Manifest(fragment, doc.lines).read(doc.data)
    return fragment


@dataclass(slots=True)
class _Manifest:
    """Reads one loaded manifest into its fragment."""

    fragment: SpecFragment
    lines: LineMap
    context: str = ""
    #: The SDS that specifies this context's elements, and where ``sdsId`` was written.
    sds: tuple[str, Location] | None = None

    def reader(self, owner: str, data: object) -> FieldReader:
        """A field reader for ``data`` whose problems go straight into the fragment."""
        return FieldReader(owner, self.lines.loc_of(data), self.fragment.problems)

    def named_items(
        self, section: FieldReader, behavior: Mapping[str, Any], key: str, what: str
    ) -> Iterator[tuple[str, dict[Any, Any], Location, FieldReader]]:
        """Each named element listed under ``behavior[key]``, its keys checked; unnamed skipped."""
        name_key, allowed = ITEM_SCHEMAS[what]
        for number, data, loc in mapping_items(self.lines, section, behavior, key):
            name = required_name(self.lines, self.reader(f"{what} #{number}", data), data, name_key)
            if name is None:
                continue
            fields = self.reader(f"{what} '{name}'", data)
            fields.unknown_keys(data, allowed, what)
            yield name, data, loc, fields

    def read(self, data: dict[Any, Any]) -> None:
        """Read the whole manifest."""
        reader = self.reader("manifest", data)
        self.check_top_keys(data)
        if not self.read_context(reader, data):
            return  # without a context name no element id can be built
        behavior = reader.mapping(data, "behavior")
        if behavior is None:
            return
        section = self.reader("behavior", behavior)
        section.unknown_keys(behavior, BEHAVIOR_KEYS)
        self.read_services(section, behavior)
        self.read_operations(section, behavior)
        self.read_events(section, behavior)
        self.read_metrics(section, behavior)
        self.read_ignores(section, behavior)
        self.read_policies(section, behavior)
        self.read_privacy(section, behavior)

    def check_top_keys(self, data: dict[Any, Any]) -> None:
        """Other top-level keys are the generator's business, but a near-miss is a typo."""
        for key in data:
            if key in TOP_KEYS:
                continue
            close = difflib.get_close_matches(str(key), TOP_KEYS, n=1, cutoff=0.8)
            if close:
                message = f"unknown top-level key '{key}' (did you mean '{close[0]}'?)"
                self.fragment.problems.append(Problem.at(self.lines.at(data, key), message))
            else:
                message = f"top-level key '{key}' ignored (not one of {', '.join(TOP_KEYS)})"
                self.fragment.notes.append(Problem.at(self.lines.at(data, key), message))

    def read_context(self, reader: FieldReader, data: dict[Any, Any]) -> bool:
        """Declare the context node and its references; False when there is no usable name."""
        context = reader.mapping(data, "context")
        if context is None or context.get("name") is None:
            if data.get("context") is not None and context is None:
                return False  # wrong type, already reported
            line = self.lines.key_line(data, "context") if "context" in data else 1
            message = "context.name is required (the bounded context this manifest describes)"
            self.fragment.problems.append(Problem(self.fragment.path, line, message))
            return False
        fields = self.reader("context", context)
        name = required_name(self.lines, fields, context, "name")
        if name is None:
            return False
        self.context = name
        node_id = context_id(name)
        sds = fields.string(context, "sdsId")
        documents = {key: string_items(self.lines, fields, context, key) for key in DOC_KEYS}
        props: dict[str, Any] = {
            "sdsId": sds,
            **{key: [target for target, _ in items] for key, items in documents.items()},
            "manifestVersion": reader.string(data, "manifestVersion"),
            "model": reader.mapping(data, "model"),
        }
        loc = self.lines.at(context, "name")
        self.fragment.nodes.append(
            SpecNode(node_id, NodeKind.CONTEXT, loc, name, name, props=props, origin=ORIGIN)
        )
        if sds:
            self.sds = (sds, self.lines.at(context, "sdsId"))
            documents["sdsId"] = [self.sds]
        for key, items in documents.items():
            for target, at in items:
                self.reference(target, at, key, SpecEdge(node_id, target, EdgeKind.RELATED_TO, at))
        return True

    def reference(self, target: str, loc: Location, key: str, edge: SpecEdge) -> None:
        """Reference another spec node from the context section."""
        what = f"context '{self.context}': {key}"
        self.fragment.refs.append(Reference(target, loc, what, edge))

    def declare(
        self, kind: NodeKind, name: str, loc: Location, props: dict[str, Any] | None = None
    ) -> str:
        """Declare a model element of this context, specified by the context's SDS."""
        node_id = model_id(self.context, kind, name)
        node = SpecNode(node_id, kind, loc, name, self.context, props=props or {}, origin=ORIGIN)
        self.fragment.nodes.append(node)
        self.fragment.edges.append(
            SpecEdge(node_id, context_id(self.context), EdgeKind.IN_CONTEXT, loc)
        )
        if self.sds is not None:
            # Same target, place and wording for every element: a wrong sdsId reads as one error.
            sds, at = self.sds
            self.reference(sds, at, "sdsId", SpecEdge(node_id, sds, EdgeKind.SPECIFIED_BY, at))
        return node_id

    def read_services(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``services``: the ``service.name`` values that belong to this context."""
        for name, at in string_items(self.lines, section, behavior, "services"):
            if not name.strip():
                self.fragment.problems.append(Problem.at(at, "manifest: empty service name"))
                continue
            node_id = service_id(name)
            self.fragment.nodes.append(
                SpecNode(node_id, NodeKind.SERVICE, at, name, self.context, origin=ORIGIN)
            )
            self.fragment.edges.append(
                SpecEdge(node_id, context_id(self.context), EdgeKind.BELONGS_TO, at)
            )
            self.fragment.services.append((name, self.context, at))

    def read_operations(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``operations``: each one is a flow of this context with runtime expectations."""
        for number, data, loc in mapping_items(self.lines, section, behavior, "operations"):
            flow = required_name(
                self.lines, self.reader(f"operation #{number}", data), data, "flow"
            )
            if flow is None:
                continue
            owner = f"operation '{flow}'"
            self.reader(owner, data).unknown_keys(data, OPERATION_KEYS, "operation")
            operation, refs, problems = read_operation(
                data,
                name=flow,
                context=self.context,
                loc=loc,
                source=ORIGIN,
                owner=owner,
                loc_of=self.lines.loc_of(data),
            )
            props = {"kind": operation.kind} if operation.kind else {}
            self.declare(NodeKind.FLOW, flow, loc, props)
            self.fragment.operations.append(operation)
            self.fragment.refs.extend(refs)
            self.fragment.problems.extend(problems)

    def read_events(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``events``: ``{id, log: {event_name}, topic}``."""
        for name, data, loc, fields in self.named_items(section, behavior, "events", "event"):
            log = fields.mapping(data, "log") or {}
            fields.unknown_keys(log, ("event_name",), "log")
            node_id = self.declare(NodeKind.EVENT, name, loc)
            self.fragment.events.append(
                EventSpec(
                    node_id,
                    self.context,
                    loc,
                    log_event=fields.string(log, "event_name"),
                    topic=fields.string(data, "topic"),
                )
            )

    def read_metrics(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``metrics``: ``{name, unit, range: {min, max}}``."""
        for name, data, loc, fields in self.named_items(section, behavior, "metrics", "metric"):
            bounds = fields.mapping(data, "range") or {}
            fields.unknown_keys(bounds, ("min", "max"), "range")
            node_id = self.declare(NodeKind.METRIC, name, loc)
            self.fragment.metrics.append(
                MetricSpec(
                    node_id,
                    name,
                    self.context,
                    loc,
                    unit=fields.string(data, "unit"),
                    min=fields.number(bounds, "min"),
                    max=fields.number(bounds, "max"),
                )
            )

    def read_ignores(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``ignore``: telemetry declared benign, each rule shaped like an operation's match."""
        for number, data, loc in mapping_items(self.lines, section, behavior, "ignore"):
            fields = self.reader(f"ignore rule #{number}", data)
            fields.unknown_keys(data, IGNORE_KEYS, "ignore")
            known = {key: value for key, value in data.items() if key in IGNORE_KEYS}
            if not known:
                if not data:
                    expected = ", ".join(IGNORE_KEYS)
                    message = f"{fields.owner}: empty rule (expected one of {expected})"
                    self.fragment.problems.append(Problem.at(loc, message))
                continue
            for binding in read_bindings(fields, known):
                self.fragment.ignores.append(
                    IgnoreRule(
                        self.context,
                        loc,
                        span_name=binding.span_name,
                        http_route=binding.http_route,
                        http_method=binding.http_method,
                        rpc_service=binding.rpc_service,
                        rpc_method=binding.rpc_method,
                    )
                )

    def read_policies(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``policies``: ``{id, when: {flow}, assert}``, checked against matching spans."""
        for name, data, loc, fields in self.named_items(section, behavior, "policies", "policy"):
            when = fields.mapping(data, "when") or {}
            fields.unknown_keys(when, ("flow",), "when")
            node_id = self.declare(NodeKind.POLICY, name, loc)
            flow = fields.string(when, "flow")
            when_flow = qualify(flow, self.context, NodeKind.FLOW) if flow else None
            if when_flow is not None:
                at = self.lines.at(when, "flow")
                edge = SpecEdge(when_flow, node_id, EdgeKind.GOVERNED_BY, at)
                what = f"policy '{name}': when.flow"
                self.fragment.refs.append(Reference(when_flow, at, what, edge))
            self.fragment.policies.append(
                PolicySpec(node_id, self.context, loc, when_flow, fields.string(data, "assert"))
            )

    def read_privacy(self, section: FieldReader, behavior: Mapping[str, Any]) -> None:
        """``privacy``: attributes holding PII and the detectors to run."""
        privacy = section.mapping(behavior, "privacy")
        if privacy is None:
            return
        fields = self.reader("privacy", privacy)
        fields.unknown_keys(privacy, PRIVACY_KEYS)
        detectors: list[str] = []
        for name, at in string_items(self.lines, fields, privacy, "detectors"):
            if name in DETECTORS:
                detectors.append(name)
            else:
                expected = ", ".join(DETECTORS)
                message = f"privacy: unknown detector '{name}' (expected one of {expected})"
                self.fragment.problems.append(Problem.at(at, message))
        self.fragment.privacy.append(
            PrivacyRule(
                self.context,
                self.lines.at(behavior, "privacy"),
                pii_attributes=fields.strings(privacy, "pii_attributes"),
                detectors=tuple(detectors),
            )
        )
