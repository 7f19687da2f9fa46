"""A SEA declaration being read: its node, its annotations and how their values decode.

Annotation values are JSON. Those the loader interprets must decode, and a value that does not
is a problem at the annotation's line (``@budget is not valid JSON: Expecting ',' delimiter
(column 31)``). SEA-native annotations the loader only keeps (``@window 60 "seconds"``) are
read loosely: JSON when it decodes, the text as written otherwise.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sidecar.spec.model import (
    EdgeKind,
    Location,
    Problem,
    Reference,
    SpecEdge,
    SpecFragment,
    SpecNode,
)
from sidecar.spec.operation_fields import type_name
from sidecar.spec.sea_lexer import Annotation, preview

_BARE_WORD = re.compile(r"[\w.\-/:]+")


@dataclass(slots=True)
class Declaration:
    """A known declaration: the node it became, the owner label of its messages, its annotations."""

    frag: SpecFragment
    owner: str
    node: SpecNode
    annotations: dict[str, Annotation]
    _values: dict[str, tuple[bool, Any]] = field(default_factory=dict)

    @property
    def context(self) -> str:
        """The bounded context the declaration belongs to."""
        return self.node.context or ""

    @property
    def line(self) -> int:
        """The declaration's own line."""
        return self.node.loc.line

    def problem(self, line: int, message: str) -> None:
        """Record a problem about this declaration."""
        self.frag.problems.append(Problem(self.frag.path, line, f"{self.owner}: {message}"))

    def skip(self, line: int, text: str) -> None:
        """Note text of this declaration that the loader does not understand."""
        note = f"{self.owner}: skipped unrecognised text {preview(text)}"
        self.frag.notes.append(Problem(self.frag.path, line, note))

    def value(self, name: str, *, bare_string: bool = False) -> tuple[bool, Any]:
        """An annotation's decoded value, decoded once; (False, None) if absent or invalid."""
        if name not in self._values:
            ann = self.annotations.get(name)
            self._values[name] = (
                (False, None) if ann is None else decode(self.frag, self.owner, ann, bare_string)
            )
        return self._values[name]

    def string(self, name: str) -> str | None:
        """An annotation that must be one string (a bare word counts)."""
        ok, value = self.value(name, bare_string=True)
        if not ok:
            return None
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return str(value)
        got = type_name(value)
        self.problem(self.annotations[name].line, f"@{name} must be a string, got {got}")
        return None

    def strings(self, name: str) -> list[str]:
        """An annotation that must be a list of strings (one string counts as a list of one)."""
        ok, value = self.value(name, bare_string=True)
        if not ok:
            return []
        if isinstance(value, str):
            return [value]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        got = type_name(value)
        self.problem(self.annotations[name].line, f"@{name} must be a list of strings, got {got}")
        return []

    def refs(self, name: str, targets: list[str], edge_kind: EdgeKind) -> None:
        """References from this declaration, written in annotation ``name``."""
        loc = Location(self.frag.path, self.annotations[name].line)
        for target in dict.fromkeys(targets):
            edge = SpecEdge(self.node.id, target, edge_kind, loc)
            self.frag.refs.append(Reference(target, loc, f"{self.owner}: @{name}", edge))


def index_annotations(
    frag: SpecFragment, owner: str, allowed: frozenset[str], annotations: list[Annotation]
) -> dict[str, Annotation]:
    """Annotations by name; unknown names become notes, repeated names problems."""
    index: dict[str, Annotation] = {}
    for ann in annotations:
        if ann.name not in allowed:
            note = f"{owner}: unknown annotation @{ann.name} ignored"
            frag.notes.append(Problem(frag.path, ann.line, note))
        elif ann.name in index:
            first = index[ann.name].line
            message = f"{owner}: @{ann.name} is given twice (first at line {first})"
            frag.problems.append(Problem(frag.path, ann.line, message))
        else:
            index[ann.name] = ann
    return index


def decode(frag: SpecFragment, owner: str, ann: Annotation, bare_string: bool) -> tuple[bool, Any]:
    """Decode an annotation's JSON value, recording a problem at its line if it is not JSON."""
    prefix = f"{owner}: @{ann.name}" if owner else f"@{ann.name}"
    text = ann.text.strip()
    if ann.unclosed is not None:
        reason = f"'{ann.unclosed}' is never closed"
    elif not text:
        reason = "it has no value"
    else:
        try:
            return True, json.loads(text)
        except json.JSONDecodeError as exc:
            if bare_string and _BARE_WORD.fullmatch(text):
                return True, text  # ``@sds SDS-041`` reads as ``@sds "SDS-041"``
            where = f"line {exc.lineno} " if exc.lineno > 1 else ""
            reason = f"{exc.msg} ({where}column {exc.colno})"
        except RecursionError:
            reason = "it is nested too deeply"
        except ValueError as exc:  # e.g. an integer longer than Python converts
            reason = str(exc)
    frag.problems.append(Problem(frag.path, ann.line, f"{prefix} is not valid JSON: {reason}"))
    return False, None


def loose_value(ann: Annotation) -> Any:
    """A SEA-native annotation value: JSON when it decodes, otherwise the text as written."""
    try:
        return json.loads(ann.text)
    except (ValueError, RecursionError):
        return ann.text.strip()
