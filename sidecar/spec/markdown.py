"""Reading ADR, PRD and SDS markdown documents into spec fragments.

A markdown file is a spec document when it sits under an ``adr/``, ``prd/`` or ``sds/``
directory (the nearest one gives its kind) or when its first ``# `` title names an id
(``# ADR-029: Observability``). ``README.md`` and ``index.md`` in such a directory are the
directory's index, not a document, unless their title or front matter carries an id.

Metadata comes from YAML front matter, then bold header lines near the top
(``**Status**: Accepted``, ``**Satisfies**: ADR-033 (Kernel-Shell), ADR-034``), then the title
line, then the file name. Lists from both places are merged; for single values the front matter
wins.

Ids are canonical everywhere (own id, references, requirement ids): upper-case prefix, leading
zeros dropped, then padded to three digits, so ``ADR-29``, ``adr-029`` and ``ADR-0029`` all
name ``ADR-029`` and a reference resolves however either side wrote the number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import yaml

from sidecar.spec.model import (
    DOCUMENT_PREFIXES,
    EdgeKind,
    Location,
    NodeKind,
    Problem,
    Reference,
    SpecEdge,
    SpecFragment,
    SpecNode,
    canonical_document_id,
    context_id,
)
from sidecar.spec.operation_fields import type_name

# libyaml is ~10x faster than the pure-Python loader; thousands of documents load at start-up.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_DIRECTORY_KINDS = {"adr": NodeKind.ADR, "prd": NodeKind.PRD, "sds": NodeKind.SDS}
_INDEX_NAMES = frozenset({"readme", "index"})
_ID = re.compile(r"\b(ADR|PRD|SDS|REQ|INV)[-_]?(\d{1,9})(?!\d)", re.IGNORECASE)
_TITLE_ID = re.compile(r"\[?(ADR|PRD|SDS)[-_ ]?(\d{1,9})(?!\d)\]?\s*[:.\-–—]?\s*", re.IGNORECASE)
_FILE_ID = re.compile(r"(?:(ADR|PRD|SDS)[-_ ]?)?(\d{1,9})(?!\d)", re.IGNORECASE)
_HEADER = re.compile(r"\s*(?:[-*+]\s+)?\*\*([^*]{1,60})\*\*\s*:?\s*(.*)")
_YAML_KEY = re.compile(r"\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*:")
_PARENTHETICAL = re.compile(r"\([^()]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_SEPARATOR_CELL = re.compile(r":?-+:?")
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_HEADER_LINES = 40

#: Edge kinds of the list fields, and the front-matter keys that feed each one.
_LINK_KEYS = {
    EdgeKind.SATISFIES: ("satisfies", "satisfies_prds", "satisfies_adrs", "satisfies_sds"),
    EdgeKind.RELATED_TO: ("related", "related_adrs", "related_prds", "related_sds"),
    EdgeKind.SUPERSEDES: ("supersedes",),
}
_LINK_WORDS = {
    EdgeKind.SATISFIES: "satisfies",
    EdgeKind.RELATED_TO: "related",
    EdgeKind.SUPERSEDES: "supersedes",
}
_SINGLE_KEYS = ("id", "title", "status", "bounded_context")
#: Bold header labels (lower case) that set a single value; other labels become props.
_HEADER_KEYS = {
    "id": "id",
    "document id": "id",
    "title": "title",
    "status": "status",
    "bounded context": "bounded_context",
    "context": "bounded_context",
}


def parse_markdown(path: str, text: str) -> SpecFragment | None:
    """Read an ADR/PRD/SDS document into a fragment, or None if the file is not one."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    if lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    doc = _Document(path, lines)
    body_start = doc.read_front_matter()
    doc.read_body(body_start)
    kind = _directory_kind(path) or doc.title_kind
    if kind is None:
        return None
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    if stem.lower() in _INDEX_NAMES and doc.title_kind is None and "id" not in doc.single:
        return None
    return doc.build(kind, stem)


@dataclass(slots=True)
class _Document:
    """What one markdown file says about itself, gathered before the node is built."""

    path: str
    lines: list[str]
    frag: SpecFragment = field(init=False)
    #: id / title / status / bounded_context -> (value as written, line).
    single: dict[str, tuple[str, int]] = field(default_factory=dict)
    links: list[tuple[EdgeKind, str, int]] = field(default_factory=list)
    props: dict[str, Any] = field(default_factory=dict)
    title_kind: NodeKind | None = None
    title_id: tuple[str, int] | None = None
    title: str | None = None
    requirements: list[tuple[int, list[str], list[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.frag = SpecFragment(self.path)

    def problem(self, line: int, message: str) -> None:
        self.frag.problems.append(Problem(self.path, line, message))

    # -- front matter -------------------------------------------------------------------------

    def read_front_matter(self) -> int:
        """Read YAML front matter; returns the index of the first body line."""
        if self.lines[0].strip() != "---":
            return 0
        end = next(
            (i for i in range(1, len(self.lines)) if self.lines[i].strip() in ("---", "...")), None
        )
        if end is None:
            self.problem(1, "front matter opened here is never closed with '---'")
            return 1
        block = self.lines[1:end]
        try:
            data = yaml.load("\n".join(block), Loader=_YAML_LOADER)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = min(2 + mark.line, end) if mark else 1
            where = f" (column {mark.column + 1})" if mark else ""
            self.problem(line, f"front matter is not valid YAML: {exc.problem or exc}{where}")
            return end + 1
        except Exception as exc:  # PyYAML's constructors raise plain ValueError & co on bad scalars
            self.problem(1, f"front matter is not valid YAML: {exc}")
            return end + 1
        if data is None:
            return end + 1
        if not isinstance(data, dict):
            self.problem(
                1, f"front matter must be a mapping of keys (id, title, ...), got {type_name(data)}"
            )
            return end + 1
        self._read_front_matter_keys(data, block)
        return end + 1

    def _read_front_matter_keys(self, data: dict[Any, Any], block: list[str]) -> None:
        key_lines: dict[str, int] = {}
        for i, line in enumerate(block):
            match = _YAML_KEY.match(line)
            if match:
                key_lines.setdefault(match.group(1), i + 2)
        meta = {k: v for k, v in data.items() if isinstance(k, str)}
        for nested in ("metadata", "sds", "prd", "adr"):
            inner = meta.get(nested)
            if isinstance(inner, dict):
                for key, value in inner.items():
                    if isinstance(key, str):
                        meta.setdefault(key, value)
        for key in _SINGLE_KEYS:
            value = meta.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                self.single[key] = (str(value).strip(), key_lines.get(key, 1))
            elif value is not None:
                got = type_name(value)
                self.problem(key_lines.get(key, 1), f"'{key}' must be a string, got {got}")
        for edge_kind, keys in _LINK_KEYS.items():
            for key in keys:
                self._read_link_list(meta.get(key), key, key_lines.get(key, 1), edge_kind, block)
        used = {*_SINGLE_KEYS, *(k for keys in _LINK_KEYS.values() for k in keys)}
        for key, value in meta.items():
            if key not in used and isinstance(value, str | int | float | bool):
                self.props[key] = value
            elif key not in used and isinstance(value, date):
                self.props[key] = value.isoformat()

    def _read_link_list(
        self, value: Any, key: str, line: int, edge_kind: EdgeKind, block: list[str]
    ) -> None:
        if value is None:
            return
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.problem(line, f"'{key}' must be a list of document ids, got {type_name(value)}")
            return
        for item in items:
            if not isinstance(item, str):
                self.problem(line, f"'{key}' items must be document ids, got {type_name(item)}")
                continue
            at = _line_of(item, block, line)
            if not _ID.search(item):
                self.problem(at, f"'{key}' item '{item}' is not a document id like ADR-029")
            self.links.append((edge_kind, item, at))

    # -- body ---------------------------------------------------------------------------------

    def read_body(self, start: int) -> None:
        """One pass over the body: title, header lines, status section, requirement rows."""
        fence: str | None = None
        in_header = True
        status_section = False
        table_header: list[str] = []
        previous_row: list[str] | None = None
        for index in range(start, len(self.lines)):
            line = self.lines[index]
            number = index + 1
            stripped = line.strip()
            if fence is not None:
                if stripped.startswith(fence):
                    fence = None
                continue
            if stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
                continue
            if stripped.startswith("|"):
                cells = _cells(stripped)
                if cells and all(_SEPARATOR_CELL.fullmatch(c) for c in cells):
                    table_header = previous_row or []
                elif cells and canonical_document_id(_plain(cells[0]) or "-") is not None:
                    self.requirements.append((number, cells, table_header))
                previous_row = cells
                continue
            previous_row = None
            table_header = []
            if line.startswith("#"):
                level = len(line) - len(line.lstrip("#"))
                heading = line[level:].strip()
                if level == 1 and self.title is None and line[1:2].isspace():
                    self._read_title(heading, number)
                elif level == 2:
                    in_header = False
                    status_section = heading.lower() == "status" and "status" not in self.single
                continue
            if status_section and stripped:
                self.single["status"] = (stripped, number)
                status_section = False
            elif in_header and index - start < _HEADER_LINES and "**" in line:
                self._read_header(index, number)

    def _read_title(self, heading: str, number: int) -> None:
        match = _TITLE_ID.match(heading)
        if match is None:
            self.title = heading
            return
        self.title_kind = NodeKind(match.group(1).lower())
        self.title_id = (f"{match.group(1)}-{match.group(2)}", number)
        self.title = heading[match.end() :].strip() or heading

    def _read_header(self, index: int, number: int) -> None:
        match = _HEADER.fullmatch(self.lines[index])
        if match is None:
            return
        label = " ".join(match.group(1).strip().rstrip(":").split()).lower()
        value = match.group(2).strip()
        edge_kind = next((k for k, w in _LINK_WORDS.items() if label.startswith(w)), None)
        if edge_kind is not None:
            self.links.append((edge_kind, value, number))
            for follow in range(index + 1, min(index + 20, len(self.lines))):
                item = self.lines[follow].strip()
                if not value and item[:2] in ("- ", "* ", "+ ") and "**" not in item:
                    self.links.append((edge_kind, item, follow + 1))
                else:
                    break
            return
        key = _HEADER_KEYS.get(label)
        if key is None:
            self.props.setdefault(label, value)
        elif key not in self.single and value:
            self.single[key] = (value, number)

    # -- result -------------------------------------------------------------------------------

    def build(self, kind: NodeKind, stem: str) -> SpecFragment:
        """The fragment: the document node, its edges and references, its requirements."""
        frag = self.frag
        doc_id, id_line = self._resolve_id(kind, stem)
        if doc_id is None:
            prefix = DOCUMENT_PREFIXES[kind]
            self.problem(1, f"no {prefix} id in front matter, title or file name")
            return frag
        loc = Location(self.path, id_line)
        context = (
            _clean(self.single["bounded_context"][0]) if "bounded_context" in self.single else None
        )
        title = self.single["title"][0] if "title" in self.single else self.title or ""
        status = None
        if "status" in self.single:
            status = " ".join(_clean(self.single["status"][0]).lower().split()) or None
        node = SpecNode(doc_id, kind, loc, title, context or None, status, self.props, "markdown")
        frag.nodes.append(node)
        if context:
            line = self.single["bounded_context"][1]
            frag.edges.append(
                SpecEdge(
                    doc_id, context_id(context), EdgeKind.IN_CONTEXT, Location(self.path, line)
                )
            )
        seen: set[tuple[EdgeKind, str]] = set()
        for edge_kind, written, line in self.links:
            for match in _ID.finditer(_PARENTHETICAL.sub("", written)):
                target = f"{match.group(1).upper()}-{int(match.group(2)):03d}"
                if target == doc_id or (edge_kind, target) in seen:
                    continue
                seen.add((edge_kind, target))
                at = Location(self.path, line)
                edge = SpecEdge(doc_id, target, edge_kind, at)
                what = f"{doc_id}: {_LINK_WORDS[edge_kind]}"
                frag.refs.append(Reference(target, at, what, edge))
        if kind is NodeKind.PRD:
            self._build_requirements(doc_id, context or None)
        return frag

    def _resolve_id(self, kind: NodeKind, stem: str) -> tuple[str | None, int]:
        prefix = DOCUMENT_PREFIXES[kind]
        candidates: list[tuple[str, int, str]] = []
        if "id" in self.single:
            candidates.append((*self.single["id"], "id"))
        if self.title_id is not None:
            candidates.append((*self.title_id, "title id"))
        file_match = _FILE_ID.match(stem)
        if file_match and (file_match.group(1) or prefix).upper() == prefix:
            candidates.append((f"{prefix}-{file_match.group(2)}", 1, "file name id"))
        chosen: tuple[str, int] | None = None
        for written, line, source in candidates:
            doc_id = canonical_document_id(f"{prefix}-{written}" if written.isdigit() else written)
            if doc_id is None:
                self.problem(line, f"{source} '{written}' is not a document id like {prefix}-029")
            elif not doc_id.startswith(prefix + "-"):
                self.problem(
                    line, f"{source} '{written}' has the wrong kind: expected {prefix}-nnn"
                )
            elif chosen is None:
                chosen = (doc_id, line)
            elif doc_id != chosen[0] and source == "title id":
                self.problem(
                    line, f"title id {doc_id} differs from the front matter id {chosen[0]}"
                )
        return chosen if chosen else (None, 1)

    def _build_requirements(self, prd_id: str, context: str | None) -> None:
        first_line: dict[str, int] = {}
        for number, cells, header in self.requirements:
            req_id = canonical_document_id(_plain(cells[0]))
            if req_id is None or not req_id.startswith("REQ-"):
                continue
            if req_id in first_line:
                first = first_line[req_id]
                self.problem(
                    number, f"{req_id} is declared twice in this file (first at line {first})"
                )
                continue
            first_line[req_id] = number
            props: dict[str, Any] = {}
            status = None
            for i in range(2, len(cells)):
                name = header[i] if i < len(header) and header[i] else f"column {i + 1}"
                props[name] = cells[i]
                if name.lower() == "status":
                    status = _clean(cells[i]).lower() or None
            loc = Location(self.path, number)
            title = cells[1] if len(cells) > 1 else ""
            node = SpecNode(req_id, NodeKind.REQ, loc, title, context, status, props, "markdown")
            self.frag.nodes.append(node)
            self.frag.edges.append(SpecEdge(req_id, prd_id, EdgeKind.PART_OF, loc))


def _directory_kind(path: str) -> NodeKind | None:
    """The kind given by the nearest ``adr``/``prd``/``sds`` directory above the file."""
    for part in reversed(path.split("/")[:-1]):
        kind = _DIRECTORY_KINDS.get(part.lower())
        if kind is not None:
            return kind
    return None


def _line_of(written: str, block: list[str], key_line: int) -> int:
    """The front-matter line where a list item was written (searching from its key's line)."""
    for i in range(max(key_line - 2, 0), len(block)):
        if written in block[i]:
            return i + 2
    return key_line


def _cells(row: str) -> list[str]:
    inner = row[1:-1] if row.endswith("|") and len(row) > 1 else row[1:]
    return [cell.strip() for cell in _CELL_SPLIT.split(inner)]


def _plain(cell: str) -> str:
    """A table cell without links and emphasis: ``**[REQ-001](#r1)**`` -> ``REQ-001``."""
    return _MD_LINK.sub(r"\1", cell).strip("*_` ")


def _clean(value: str) -> str:
    """A header value without parenthetical notes and emphasis marks."""
    return _PARENTHETICAL.sub("", value).replace("*", "").replace("`", "").strip()
