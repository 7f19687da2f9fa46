"""Reading SEA DSL files (``*.sea``) into spec fragments.

Entity, Flow, Policy, Metric and Event declarations become model nodes of the file's
``@context``; every other declaration is skipped with a note (SEA has many the sidecar has no
use for: Dimension, Unit, Resource, Role, Instance ...). Annotation values are JSON; those the
loader interprets must decode, the SEA-native ones it only keeps (``@threshold 100``,
``@window 60 "seconds"``) are stored in the node's props as written.

A Flow's runtime annotations are turned into the manifest's operation shape and read by
:func:`~sidecar.spec.operation_fields.read_operation`, so SEA and manifests accept the same
fields with the same messages.

Metric ``@threshold`` stays a documented prop and does not become ``MetricSpec.max``: SEA does
not say which side of a threshold is bad (too few daily orders is the alarm in one model, too
many in another), and guessing would invent range drift. A range is declared explicitly with
``@range {"min": 0, "max": 100}``. Policy and metric expressions (``as: ...``) are SEA
expressions, kept as text and never evaluated here.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sidecar.spec.model import (
    EdgeKind,
    EventSpec,
    Location,
    MetricSpec,
    NodeKind,
    PolicySpec,
    Problem,
    SpecEdge,
    SpecFragment,
    SpecNode,
    canonical_document_id,
    context_id,
    model_id,
    qualify,
)
from sidecar.spec.operation_fields import OPERATION_KEYS, read_operation, type_name
from sidecar.spec.sea_declaration import Declaration, decode, index_annotations, loose_value
from sidecar.spec.sea_lexer import (
    FILE_ANNOTATIONS,
    INTEGER,
    Block,
    iter_tokens,
    key_values,
    number,
    preview,
    split_blocks,
    split_name,
    unquote,
)

#: Flow annotations that make the flow an operation with runtime expectations.
RUNTIME_ANNOTATIONS = (
    "runtime",
    "budget",
    "calls",
    "steps",
    "attributes",
    "deprecated",
    "requires_calls",
    "policies",
)
#: Operation fields whose SEA annotation has another name; the rest share their name.
_FIELD_ANNOTATION = {"service": "runtime", "match": "runtime", "budgets": "budget", "kind": "cqrs"}
#: SEA-native annotations kept in props as written; the loader gives them no meaning.
_METRIC_PROPS = ("threshold", "severity", "target", "window", "refresh_interval")
_PROP_ANNOTATIONS = frozenset(
    {"rationale", "tags", "version", "replaces", "changes", *_METRIC_PROPS}
)
_ALLOWED = {
    "Flow": frozenset({"sds", "cqrs", "aliases", "emits", *RUNTIME_ANNOTATIONS}),
    "Policy": frozenset({"sds", "rationale", "tags", "version"}),
    "Metric": frozenset({"sds", "unit", "range", *_METRIC_PROPS}),
    "Event": frozenset({"sds", "log", "topic"}),
    "Entity": frozenset({"sds", "replaces", "changes"}),
}
_MODALITIES = frozenset({"obligation", "prohibition", "permission"})
_VERSION = re.compile(r"v\d+(?:\.\d+)*")


def sea_annotation_name_for(field_name: str) -> str:
    """The SEA annotation that supplies an operation field (``budgets`` -> ``budget``)."""
    return _FIELD_ANNOTATION.get(field_name, field_name)


def parse_sea(path: str, text: str) -> SpecFragment:
    """Read one SEA file into a fragment; unknown syntax becomes notes, never an exception."""
    frag = SpecFragment(path)
    context: str | None = None
    for block in split_blocks(text):
        loc = Location(path, block.line)
        if block.keyword == "@":
            context = _read_file_annotations(frag, block, context)
        elif not block.keyword:
            excerpt = preview(block.clauses[0][1] if block.clauses else "")
            frag.notes.append(Problem.at(loc, f"skipped SEA text outside a declaration: {excerpt}"))
        elif not block.known:
            frag.notes.append(Problem.at(loc, f"skipped unknown SEA declaration '{block.keyword}'"))
        else:
            _read_declaration(frag, block, context)
    return frag


def _read_file_annotations(frag: SpecFragment, block: Block, context: str | None) -> str | None:
    for ann in block.annotations:
        if ann.name == "context":
            ok, value = decode(frag, "", ann, bare_string=True)
            if ok and isinstance(value, str) and value.strip():
                context = value.strip()
            elif ok:
                frag.problems.append(
                    Problem(frag.path, ann.line, '@context must be a context name like "orders"')
                )
        elif ann.name not in FILE_ANNOTATIONS:
            note = f"skipped annotation @{ann.name}: it belongs to no declaration"
            frag.notes.append(Problem(frag.path, ann.line, note))
    return context


def _read_declaration(frag: SpecFragment, block: Block, file_context: str | None) -> None:
    keyword = block.keyword
    loc = Location(frag.path, block.line)
    name, rest = split_name(block.head)
    if name is None:
        message = f"{keyword}: expected a name after '{keyword}', e.g. {keyword} \"Name\""
        frag.problems.append(Problem.at(loc, message))
        return
    owner = f"{keyword} '{name}'"
    extra = list(iter_tokens(rest))
    clauses = block.clauses
    context = file_context
    if keyword == "Entity":
        extra, clauses, context = _entity_domain(extra, clauses, file_context)
    if context is None:
        message = f'{owner}: no @context before this declaration (add @context "name" above it)'
        frag.problems.append(Problem.at(loc, message))
        return
    kind = NodeKind(keyword.lower())
    node = SpecNode(model_id(context, kind, name), kind, loc, name, context, origin="sea")
    frag.nodes.append(node)
    frag.edges.append(SpecEdge(node.id, context_id(context), EdgeKind.IN_CONTEXT, loc))
    decl = Declaration(
        frag, owner, node, index_annotations(frag, owner, _ALLOWED[keyword], block.annotations)
    )
    _READERS[keyword](decl, extra, clauses)
    for prop in _PROP_ANNOTATIONS & decl.annotations.keys():
        node.props[prop] = loose_value(decl.annotations[prop])
    if "sds" in decl.annotations:
        sds = [canonical_document_id(s) or s.strip() for s in decl.strings("sds")]
        decl.refs("sds", sds, EdgeKind.SPECIFIED_BY)


def _read_flow(decl: Declaration, extra: list[str], clauses: list[tuple[int, str]]) -> None:
    if extra:
        _read_resource_flow(decl, decl.line, extra)
    for line, text in clauses:
        _read_resource_flow(decl, line, list(iter_tokens(text)))
    if any(name in decl.annotations for name in RUNTIME_ANNOTATIONS):
        _read_operation(decl)
    else:
        kind = _cqrs_kind(decl.value("cqrs")[1])
        if isinstance(kind, str):
            decl.node.props["kind"] = kind
        aliases = decl.strings("aliases")
        if aliases:
            decl.node.props["aliases"] = aliases
    if "emits" in decl.annotations:
        events = [qualify(e, decl.context, NodeKind.EVENT) for e in decl.strings("emits")]
        decl.refs("emits", events, EdgeKind.EMITS)


def _cqrs_kind(value: Any) -> Any:
    """``@cqrs {"kind": "query"}`` or the shorthand ``@cqrs "query"``."""
    return value.get("kind") if isinstance(value, dict) else value


def _read_resource_flow(decl: Declaration, line: int, tokens: list[str]) -> None:
    """``from "Customer" to "Order" quantity 1``: the SEA resource flow, kept as props."""
    if not tokens or tokens[0].lower() != "from" or "from" in decl.node.props:
        decl.skip(line, " ".join(tokens))
        return
    pairs, leftover = key_values(tokens, {"from", "to", "quantity"})
    for key, value in pairs.items():
        decl.node.props[key] = number(value) if key == "quantity" else unquote(value)
    if leftover:
        decl.skip(line, " ".join(leftover))


def _read_operation(decl: Declaration) -> None:
    data: dict[str, Any] = {}
    for name in (*RUNTIME_ANNOTATIONS, "aliases", "cqrs"):
        ok, value = decl.value(name)
        if not ok:
            continue
        ann = decl.annotations[name]
        if name == "runtime":
            if not isinstance(value, dict):
                got = type_name(value)
                example = '{"service": "checkout", "span_name": "..."}'
                decl.problem(ann.line, f"@runtime must be a JSON object like {example}, got {got}")
                continue
            if "service" in value:
                data["service"] = value["service"]
            match = {k: v for k, v in value.items() if k != "service"}
            if match:
                data["match"] = match
        elif name == "cqrs":
            kind = _cqrs_kind(value)
            if kind is not None:
                data["kind"] = kind
        else:
            data["budgets" if name == "budget" else name] = value
    # top-level fields sit on their annotation's first line; nested keys are looked up lazily
    key_lines = {key: decl.annotations[sea_annotation_name_for(key)].line for key in data}
    path = decl.frag.path
    op, refs, problems = read_operation(
        data,
        name=decl.node.id,
        context=decl.context,
        loc=decl.node.loc,
        source="sea",
        owner=decl.owner,
        loc_of=lambda key: Location(path, key_lines.get(key) or _key_line(decl, key)),
        # Operation fields come from annotations (@budget); keys inside them keep their names.
        label=lambda key: "@" + sea_annotation_name_for(key) if key in OPERATION_KEYS else key,
    )
    decl.frag.operations.append(op)
    decl.frag.refs.extend(refs)
    decl.frag.problems.extend(problems)
    if op.service:
        decl.frag.services.append((op.service, decl.context, op.loc_of("service")))


def _key_line(decl: Declaration, key: str) -> int:
    """The line where a nested JSON key of a runtime annotation was written.

    Only asked for when a problem names the key, so the search is done lazily.
    """
    quoted = json.dumps(key)
    for name in (*RUNTIME_ANNOTATIONS, "cqrs"):
        ok, value = decl.value(name)
        if ok and _has_key(value, key):
            ann = decl.annotations[name]
            lines = ann.text.split("\n")
            return ann.line + next((i for i, text in enumerate(lines) if quoted in text), 0)
    return decl.line


def _has_key(value: Any, key: str, depth: int = 0) -> bool:
    if not isinstance(value, dict) or depth > 3:
        return False
    return key in value or any(_has_key(v, key, depth + 1) for v in value.values())


def _read_policy(decl: Declaration, extra: list[str], clauses: list[tuple[int, str]]) -> None:
    priority = None
    pairs, leftover = key_values(extra, {"per", "priority"})
    if "per" in pairs:
        decl.node.props["policy_kind"] = pairs["per"]
    if "priority" in pairs:
        if INTEGER.fullmatch(pairs["priority"]):
            priority = int(pairs["priority"])
        else:
            got = pairs["priority"]
            decl.problem(decl.line, f"priority must be a whole number, got '{got}'")
    for token in leftover:
        if token.lower() in _MODALITIES:
            decl.node.props["modality"] = token.capitalize()
        elif _VERSION.fullmatch(token):
            decl.node.props["version"] = token
        else:
            decl.skip(decl.line, token)
    assertion = _expression(decl, clauses)
    policy = PolicySpec(
        decl.node.id,
        decl.context,
        decl.node.loc,
        assertion=assertion,
        priority=priority,
        language="sea",
    )
    decl.frag.policies.append(policy)


def _read_metric(decl: Declaration, extra: list[str], clauses: list[tuple[int, str]]) -> None:
    for token in extra:
        decl.skip(decl.line, token)
    expression = _expression(decl, clauses)
    if expression:
        decl.node.props["expression"] = expression
    low = high = None
    ok, bounds = decl.value("range")
    if ok and isinstance(bounds, dict):
        low = _bound(decl, bounds, "min")
        high = _bound(decl, bounds, "max")
    elif ok:
        line = decl.annotations["range"].line
        decl.problem(
            line,
            f'@range must be a JSON object like {{"min": 0, "max": 100}}, got {type_name(bounds)}',
        )
    node = decl.node
    metric = MetricSpec(node.id, node.title, decl.context, node.loc, decl.string("unit"), low, high)
    decl.frag.metrics.append(metric)


def _bound(decl: Declaration, bounds: dict[Any, Any], key: str) -> float | None:
    value = bounds.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    line = decl.annotations["range"].line
    decl.problem(line, f"@range '{key}' must be a number, got {type_name(value)}")
    return None


def _read_event(decl: Declaration, extra: list[str], clauses: list[tuple[int, str]]) -> None:
    for token in extra:
        decl.skip(decl.line, token)
    for line, text in clauses:
        decl.skip(line, text)
    log_event = None
    ok, log = decl.value("log", bare_string=True)
    if ok and isinstance(log, dict) and isinstance(log.get("event_name"), str):
        log_event = log["event_name"]
    elif ok and isinstance(log, str):
        log_event = log
    elif ok:
        example = '{"event_name": "order.placed"}'
        decl.problem(decl.annotations["log"].line, f"@log must be a JSON object like {example}")
    node = decl.node
    event = EventSpec(node.id, decl.context, node.loc, log_event, decl.string("topic"))
    decl.frag.events.append(event)


def _read_entity(decl: Declaration, extra: list[str], clauses: list[tuple[int, str]]) -> None:
    for token in extra:
        if _VERSION.fullmatch(token):
            decl.node.props["version"] = token
        else:
            decl.skip(decl.line, token)
    for line, text in clauses:
        decl.skip(line, text)


_READERS = {
    "Flow": _read_flow,
    "Policy": _read_policy,
    "Metric": _read_metric,
    "Event": _read_event,
    "Entity": _read_entity,
}


def _entity_domain(
    extra: list[str], clauses: list[tuple[int, str]], context: str | None
) -> tuple[list[str], list[tuple[int, str]], str | None]:
    """Take ``in <domain>`` from the declaration line or a continuation line of an Entity."""
    pairs, leftover = key_values(extra, {"in"})
    rest = []
    for line, text in clauses:
        tokens = list(iter_tokens(text))
        if len(tokens) == 2 and tokens[0].lower() == "in":
            pairs.setdefault("in", tokens[1])
        else:
            rest.append((line, text))
    domain = unquote(pairs["in"]) if "in" in pairs else None
    return leftover, rest, domain or context


def _expression(decl: Declaration, clauses: list[tuple[int, str]]) -> str | None:
    """The text after ``as:``, with the lines that continue it."""
    parts: list[str] | None = None
    for line, text in clauses:
        if text.startswith("as:") and parts is None:
            parts = [text[3:].strip()]
        elif parts is not None and not text.startswith("as:"):
            parts.append(text.strip())
        else:
            decl.skip(line, text)
    expression = " ".join(p for p in parts or () if p)
    return expression or None
