"""Line-aware loading of YAML and JSON spec files; never raises, problems instead.

Parsers need plain data *and* the line of every key to report ``path:line: what is wrong``.
Both formats give dicts, lists and scalars plus a :class:`LineMap`: a side table keyed by
object identity with the start line of each mapping and list, the line of each key and item.

YAML: libyaml's event stream (``CSafeLoader``, the C parser) is built into data directly,
skipping PyYAML's node tree and Python constructor (half the time); duplicate keys, which YAML
keeps silently, are problems; dates stay text so the data stays JSON-like. JSON is read by
:mod:`sidecar.spec.jsonpos`; walking helpers for loaded documents are in
:mod:`sidecar.spec.located_fields`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import ScalarNode

from sidecar.spec.jsonpos import LineTable, load_json
from sidecar.spec.model import Location, Problem
from sidecar.spec.operation_fields import LocOf, type_name

Format = Literal["yaml", "json"]

_Table = LineTable

_TAG = "tag:yaml.org,2002:"
_STR = _TAG + "str"
_MERGE = _TAG + "merge"


class LineMap:
    """Where each mapping, key and list item of one loaded document was written."""

    __slots__ = ("_first", "_locations", "_table", "path")

    def __init__(self, path: str, table: _Table, first_line: int = 1) -> None:
        self.path = path
        self._table = table
        self._first = first_line
        self._locations: dict[int, Location] = {}

    def start(self, obj: object) -> int:
        """Line where a mapping or list begins (the document's first line if unknown)."""
        entry = self._table.get(id(obj))
        return entry[1] if entry is not None and entry[0] is obj else self._first

    def key_line(self, mapping: object, key: object) -> int:
        """Line of ``key`` in ``mapping``, else the mapping's start."""
        line = self._own_key(mapping, key)
        return self.start(mapping) if line is None else line

    def item_line(self, seq: object, index: int) -> int:
        """Line of item ``index`` of a list, else the list's start."""
        entry = self._table.get(id(seq))
        if entry is not None and entry[0] is seq and isinstance(entry[2], list):
            items: list[int] = entry[2]
            if 0 <= index < len(items):
                return items[index]
        return self.start(seq)

    def at(self, obj: object, key: object = None) -> Location:
        """Location of a mapping (``key`` None) or of one of its keys."""
        return self.location(self.start(obj) if key is None else self.key_line(obj, key))

    def at_item(self, seq: object, index: int) -> Location:
        """Location of one list item."""
        return self.location(self.item_line(seq, index))

    def location(self, line: int) -> Location:
        """The (shared, immutable) location of a line of this document."""
        loc = self._locations.get(line)
        if loc is None:
            loc = self._locations[line] = Location(self.path, line)
        return loc

    def loc_of(self, mapping: object) -> LocOf:
        """A ``key -> Location`` lookup for a :class:`FieldReader` reading ``mapping``.

        Keys of the mapping itself come first; then nested mappings are searched breadth-first,
        so a problem about ``p95_ms`` inside ``budgets`` points at the ``p95_ms`` line.
        """
        entry = self._table.get(id(mapping))
        own: dict[Any, int] = entry[2] if entry is not None and entry[0] is mapping else {}
        if not isinstance(own, dict):
            own = {}

        def loc(key: str) -> Location:
            line = own.get(key)
            if line is None:
                line = self._own_key(mapping, key)  # a key YAML read as a number or boolean
            if line is None:
                line = self._nested_key(mapping, key)
            return self.location(self.start(mapping) if line is None else line)

        return loc

    def _own_key(self, mapping: object, key: object) -> int | None:
        entry = self._table.get(id(mapping))
        if entry is None or entry[0] is not mapping or not isinstance(entry[2], dict):
            return None
        lines: dict[Any, int] = entry[2]
        try:
            line = lines.get(key)
        except TypeError:  # an unhashable key cannot be in a mapping
            return None
        if line is None and isinstance(key, str):
            # Readers name keys as text; YAML may have read `1:` or `on:` as a number/boolean.
            line = next((n for k, n in lines.items() if str(k) == key), None)
        return line

    def _nested_key(self, root: object, key: str) -> int | None:
        queue: list[Any] = [root]
        seen = {id(root)}
        for obj in queue:  # grows while iterating: breadth-first
            for child in obj.values() if isinstance(obj, dict) else obj:
                if isinstance(child, dict | list) and id(child) not in seen:
                    seen.add(id(child))
                    line = self._own_key(child, key)
                    if line is not None:
                        return line
                    queue.append(child)
        return None


@dataclass(slots=True)
class Located:
    """A loaded document: its top-level mapping (None if unreadable), lines and problems."""

    data: dict[Any, Any] | None
    lines: LineMap
    problems: list[Problem] = field(default_factory=list)


def load_located(text: str, path: str, fmt: Format, *, first_line: int = 1) -> Located:
    """Load YAML or JSON text whose top level must be a mapping; never raises.

    ``first_line`` is the file line of the text's first line (front matter starts at 2).
    """
    table: _Table = {}
    problems: list[Problem] = []
    lines = LineMap(path, table, first_line)
    if fmt == "json":
        data = load_json(text, path, first_line, table, problems)
    else:
        data = _load_yaml(text, path, first_line, table, problems)
    if isinstance(data, dict):
        return Located(data, lines, problems)
    if data is not None or not problems:
        got = "an empty document" if data is None else type_name(data)
        problems.append(
            Problem(path, first_line, f"expected a mapping at the top level, got {got}")
        )
    return Located(None, lines, problems)


# --- YAML ------------------------------------------------------------------------------------


class _Unreadable(Exception):
    """Raised while building for input we refuse; becomes a problem."""

    def __init__(self, message: str, line: int, column: int = 0) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


def _load_yaml(text: str, path: str, first: int, table: _Table, problems: list[Problem]) -> Any:
    loader: yaml.CSafeLoader | None = None
    line, column, message = first, 0, ""
    try:
        loader = yaml.CSafeLoader(text)
        return _build_yaml(loader, path, first, table, problems)
    except _Unreadable as exc:
        line, column, message = exc.line, exc.column, exc.message
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "unreadable"
        if mark is not None:
            line, column = first + mark.line, mark.column + 1
    except yaml.reader.ReaderError as exc:
        char = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        before = text.encode("utf-8")[: exc.position].decode("utf-8", "replace")
        line, column = first + before.count("\n"), len(before) - before.rfind("\n")
        message = f"unacceptable character #x{char:04x}: {exc.reason}"
    except yaml.YAMLError as exc:
        message = str(exc)
    except UnicodeEncodeError as exc:
        line = first + text.count("\n", 0, exc.start)
        message = f"character {text[exc.start]!r} is not valid Unicode (a lone surrogate)"
    finally:
        if loader is not None:
            loader.dispose()
    where = f" (column {column})" if column else ""
    problems.append(Problem(path, line, f"invalid YAML: {message}{where}"))
    return None


class _MergeKey:
    """A plain ``<<`` key: the value's mappings are merged into the enclosing mapping."""


_MERGE_KEY = _MergeKey()
_NO_KEY = object()


class _Map:
    """A mapping being built from events."""

    __slots__ = ("anchor", "data", "key", "key_line", "lines", "merges", "start")

    def __init__(self, start: int, anchor: str | None) -> None:
        self.start, self.anchor = start, anchor
        self.data: dict[Any, Any] = {}
        self.lines: dict[Any, int] = {}
        self.key: Any = _NO_KEY
        self.key_line = start
        self.merges: list[tuple[Any, int]] = []

    def add(self, value: Any, line: int, problems: list[Problem], path: str) -> None:
        """Take the next key or value."""
        key = self.key
        if key is _NO_KEY:
            if isinstance(value, dict | list):
                raise _Unreadable("a mapping key must be a scalar", line)
            self.key, self.key_line = value, line
            return
        self.key = _NO_KEY
        if key is _MERGE_KEY:
            self.merges.append((value, self.key_line))
            return
        earlier = self.lines.get(key)
        if earlier is not None:
            message = f"duplicate key '{key}' (first at line {earlier})"
            problems.append(Problem(path, self.key_line, message))
        self.data[key] = value if value is not _MERGE_KEY else "<<"
        self.lines[key] = self.key_line

    def finish(self, table: _Table) -> dict[Any, Any]:
        """Apply ``<<`` merges (the mapping's own keys win, then earlier sources) and record."""
        data, lines = self.data, self.lines
        for value, line in self.merges:
            for source in value if isinstance(value, list) else [value]:
                if not isinstance(source, dict):
                    raise _Unreadable("'<<' must merge a mapping or a list of mappings", line)
                source_lines = table[id(source)][2]
                for key, item in source.items():
                    if key not in data:
                        data[key], lines[key] = item, source_lines.get(key, line)
        table[id(data)] = (data, self.start, lines)
        return data


class _Seq:
    """A list being built from events."""

    __slots__ = ("anchor", "data", "items", "start")

    def __init__(self, start: int, anchor: str | None) -> None:
        self.start, self.anchor = start, anchor
        self.data: list[Any] = []
        self.items: list[int] = []

    def add(self, value: Any, line: int, problems: list[Problem], path: str) -> None:
        """Take the next item."""
        self.data.append(value if value is not _MERGE_KEY else "<<")
        self.items.append(line)

    def finish(self, table: _Table) -> list[Any]:
        """Record the list's lines."""
        table[id(self.data)] = (self.data, self.start, self.items)
        return self.data


def _build_yaml(
    loader: yaml.CSafeLoader, path: str, first: int, table: _Table, problems: list[Problem]
) -> Any:
    """Build one document from libyaml's events (no node tree, no recursion)."""
    get: Callable[[], Any] = loader.get_event
    get()  # stream start
    if isinstance(get(), StreamEndEvent):
        return None  # no document at all
    anchors: dict[str, Any] = {}
    building: set[str] = set()  # anchors of collections still open: aliasing one is a cycle
    stack: list[_Map | _Seq] = []
    root: Any = None
    while True:
        event = get()
        kind = event.__class__
        line = first + event.start_mark.line
        if kind is ScalarEvent:
            value = event.value
            if event.tag is None or event.tag == "!":
                # Most plain scalars start with a character no YAML 1.1 type claims.
                if event.implicit[0] and value[:1] in _IMPLICIT:
                    value = _resolve_plain(loader, value, line, event.start_mark.column + 1)
            else:
                value = _construct(loader, event.tag, value, line, event.start_mark.column + 1)
            if event.anchor is not None:
                anchors[event.anchor] = value
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            _check_collection_tag(event.tag, kind is MappingStartEvent, line, event)
            frame = (
                _Map(line, event.anchor) if kind is MappingStartEvent else _Seq(line, event.anchor)
            )
            stack.append(frame)
            if event.anchor is not None:
                anchors[event.anchor] = frame.data
                building.add(event.anchor)
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            done = stack.pop()
            value, line = done.finish(table), done.start
            if done.anchor is not None:
                building.discard(done.anchor)
        elif kind is AliasEvent:
            name = event.anchor
            if name in building:
                raise _Unreadable(f"alias '*{name}' refers to its own ancestor", line)
            if name not in anchors:
                raise _Unreadable(f"found undefined alias '*{name}'", line)
            value = anchors[name]
        else:  # document end
            break
        if stack:
            stack[-1].add(value, line, problems, path)
        else:
            root = value
    event = get()
    if not isinstance(event, StreamEndEvent):
        message = "expected a single document in the stream, but found another document"
        raise _Unreadable(message, first + event.start_mark.line)
    return root


def _check_collection_tag(tag: str | None, mapping: bool, line: int, event: Any) -> None:
    if tag is not None and tag != "!" and tag != (_TAG + "map" if mapping else _TAG + "seq"):
        raise _Unreadable(f"unsupported tag '{tag}'", line, event.start_mark.column + 1)


def _resolve_plain(loader: yaml.CSafeLoader, value: str, line: int, column: int) -> Any:
    """A plain scalar's value by YAML 1.1 rules (numbers, booleans, null; dates stay text)."""
    for tag, pattern in _IMPLICIT.get(value[:1], ()):
        if pattern.match(value):
            return _MERGE_KEY if tag == _MERGE else _construct(loader, tag, value, line, column)
    return value


def _construct(loader: yaml.CSafeLoader, tag: str, value: str, line: int, column: int) -> Any:
    if tag == _STR:
        return value
    construct = _SCALARS.get(tag)
    if construct is None:
        raise _Unreadable(f"unsupported tag '{tag}'", line, column)
    try:
        return construct(loader, ScalarNode(tag, value))
    except ValueError:  # `0b_`, `._` match YAML's number patterns but are not numbers
        return value


_IMPLICIT = yaml.resolver.Resolver.yaml_implicit_resolvers
_SC = yaml.constructor.SafeConstructor
_SCALARS: dict[str, Callable[[Any, ScalarNode], Any]] = {
    _TAG + "null": _SC.construct_yaml_null,
    _TAG + "bool": _SC.construct_yaml_bool,
    _TAG + "int": _SC.construct_yaml_int,
    _TAG + "float": _SC.construct_yaml_float,
    # Dates stay text: specs are JSON-like data and `2024-13-45` must not crash the loader.
    _TAG + "timestamp": _SC.construct_yaml_str,
}
