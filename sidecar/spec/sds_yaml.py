"""SDS YAML documents (``*.sds.yaml``): a design spec and the flows and events it specifies.

``sds: {id, title, bounded_context, satisfies_prds, satisfies_adrs, status}`` declares the SDS;
``cqrs.commands[]`` and ``cqrs.queries[]`` become flows of the bounded context and ``events[]``
its events (SPEC-FORMAT.md, "Documents"). Edges between nodes this file declares go straight
into the fragment; ids owned by other files become references for validation.

These are documents people write, so keys this parser does not use are left alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sidecar.spec.located_fields import mapping_items, required_name, string_items
from sidecar.spec.model import (
    EdgeKind,
    EventSpec,
    Location,
    NodeKind,
    Problem,
    Reference,
    SpecEdge,
    SpecFragment,
    SpecNode,
    context_id,
    document_kind,
    model_id,
    qualify,
)
from sidecar.spec.operation_fields import FieldReader
from sidecar.spec.yamlpos import LineMap, load_located

ORIGIN = "sds-yaml"
#: Keys of ``sds`` that become node fields or edges; the rest are kept as properties.
SDS_FIELDS = ("id", "title", "status", "bounded_context")
SATISFIES_KEYS = ("satisfies", "satisfies_prds", "satisfies_adrs")
CQRS_KINDS = (("command", "commands"), ("query", "queries"))


def parse_sds_yaml(path: str, text: str) -> SpecFragment:
    """Parse one ``*.sds.yaml`` file; never raises."""
    doc = load_located(text, path, "yaml")
    fragment = SpecFragment(path, problems=doc.problems)
    if doc.data is not None:
        _SdsDocument(fragment, doc.lines).read(doc.data)
    return fragment


@dataclass(slots=True)
class _SdsDocument:
    """Reads one loaded SDS YAML document into its fragment."""

    fragment: SpecFragment
    lines: LineMap
    context: str = ""
    sds_id: str | None = None

    def reader(self, owner: str, data: object) -> FieldReader:
        """A field reader for ``data`` whose problems go straight into the fragment."""
        return FieldReader(owner, self.lines.loc_of(data), self.fragment.problems)

    def read(self, data: dict[Any, Any]) -> None:
        """Read the whole document."""
        top = self.reader("SDS YAML", data)
        sds = top.mapping(data, "sds")
        if sds is None:
            if data.get("sds") is None:
                message = "an 'sds' section is required (sds: {id, title, bounded_context, ...})"
                self.fragment.problems.append(Problem(self.fragment.path, 1, message))
            return
        fields = self.reader("sds", sds)
        context = required_name(self.lines, fields, sds, "bounded_context")
        self.read_sds(fields, sds, context)
        if context is None:
            return  # flows and events are named within the bounded context
        # The context node itself is the manifests' to declare (the graph adds it if none does).
        self.context = context
        if self.sds_id is not None:
            self.in_context(self.sds_id, self.lines.at(sds, "id"))
        events = self.read_events(top, data)
        cqrs = top.mapping(data, "cqrs") or {}
        self.read_flows(self.reader("cqrs", cqrs), cqrs, events)

    def read_sds(self, fields: FieldReader, sds: Mapping[str, Any], context: str | None) -> None:
        """Declare the SDS node and what it satisfies."""
        if sds.get("id") is None:
            message = "sds: 'id' is required (like SDS-041)"
            self.fragment.problems.append(Problem.at(self.lines.at(sds), message))
            return
        sds_id = fields.string(sds, "id")
        if sds_id is None:
            return
        if document_kind(sds_id) is not NodeKind.SDS:
            fields.problem("id", f"'id' must be an SDS id like SDS-041, got '{sds_id}'")
            return
        self.sds_id = sds_id
        props = {k: v for k, v in sds.items() if k not in SDS_FIELDS + SATISFIES_KEYS}
        self.fragment.nodes.append(
            SpecNode(
                sds_id,
                NodeKind.SDS,
                self.lines.at(sds, "id"),
                title=fields.string(sds, "title") or "",
                context=context,
                status=fields.string(sds, "status"),
                props=props,
                origin=ORIGIN,
            )
        )
        for key in SATISFIES_KEYS:
            for target, at in string_items(self.lines, fields, sds, key):
                edge = SpecEdge(sds_id, target, EdgeKind.SATISFIES, at)
                self.fragment.refs.append(Reference(target, at, f"SDS '{sds_id}': {key}", edge))

    def in_context(self, node_id: str, loc: Location) -> None:
        """Place a node in the bounded context (declared by this file, so a plain edge)."""
        self.fragment.edges.append(
            SpecEdge(node_id, context_id(self.context), EdgeKind.IN_CONTEXT, loc)
        )

    def declare(self, kind: NodeKind, name: str, loc: Location, props: dict[str, Any]) -> str:
        """Declare a model element of the bounded context, specified by this SDS."""
        node_id = model_id(self.context, kind, name)
        self.fragment.nodes.append(
            SpecNode(node_id, kind, loc, name, self.context, props=props, origin=ORIGIN)
        )
        self.in_context(node_id, loc)
        if self.sds_id is not None:
            self.fragment.edges.append(SpecEdge(node_id, self.sds_id, EdgeKind.SPECIFIED_BY, loc))
        return node_id

    def read_events(self, top: FieldReader, data: Mapping[str, Any]) -> dict[str, str]:
        """``events[]``: ``{id, name, publish: {topic}}``; returns event id -> name."""
        names: dict[str, str] = {}
        for number, item, loc in mapping_items(self.lines, top, data, "events"):
            name = required_name(self.lines, self.reader(f"event #{number}", item), item, "name")
            if name is None:
                continue
            fields = self.reader(f"event '{name}'", item)
            event_id = fields.string(item, "id")
            publish = fields.mapping(item, "publish") or {}
            node_id = self.declare(NodeKind.EVENT, name, loc, {"id": event_id} if event_id else {})
            topic = fields.string(publish, "topic")
            self.fragment.events.append(EventSpec(node_id, self.context, loc, topic=topic))
            if event_id:
                names[event_id] = name
        return names

    def read_flows(
        self, cqrs: FieldReader, data: Mapping[str, Any], events: dict[str, str]
    ) -> None:
        """``cqrs.commands[]`` and ``cqrs.queries[]``: ``{id, name, emits, touches}``."""
        for kind, key in CQRS_KINDS:
            for number, item, loc in mapping_items(self.lines, cqrs, data, key):
                owner = f"{kind} #{number}"
                name = required_name(self.lines, self.reader(owner, item), item, "name")
                if name is None:
                    continue
                fields = self.reader(f"{kind} '{name}'", item)
                props: dict[str, Any] = {"kind": kind}
                flow_ref = fields.string(item, "id")
                if flow_ref:
                    props["id"] = flow_ref
                touches = fields.strings(item, "touches")
                if touches:
                    props["touches"] = list(touches)
                flow_id = self.declare(NodeKind.FLOW, name, loc, props)
                for emitted, at in string_items(self.lines, fields, item, "emits"):
                    # `emits` may name the event or give its id from this file's `events`.
                    target = qualify(events.get(emitted, emitted), self.context, NodeKind.EVENT)
                    edge = SpecEdge(flow_id, target, EdgeKind.EMITS, at)
                    self.fragment.refs.append(Reference(target, at, f"{fields.owner}: emits", edge))
