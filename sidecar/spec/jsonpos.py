"""Line-aware JSON loading: :mod:`json` decodes, a token scan of the same text gives the lines.

:mod:`json` gives the familiar error messages; reading JSON as YAML for the lines would fail on
valid JSON (keys over 1024 characters, surrogate escapes, tabs in places).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sidecar.spec.model import Problem

#: id(obj) -> (obj, start line, key lines for a dict | item lines for a list). Holding the
#: object keeps its id from being reused while the table lives.
LineTable = dict[int, tuple[Any, int, Any]]


# Strings, brackets, newlines and any other run of value characters; commas and colons are
# implied by position. Applied to text json.loads accepts, so a string never hides a bracket
# and never holds a raw newline.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[{}\[\]\n]|[^\s,:{}\[\]"]+')


@dataclass(slots=True)
class _Span:
    """A JSON object or array seen by the token scan."""

    start: int
    is_object: bool
    want_key: bool = True  # objects alternate key, value
    lines: list[int] = field(default_factory=list)  # key lines (object) or item lines (array)
    arrays: list[_Span] = field(default_factory=list)  # direct child arrays, in order


def _scan_json(text: str, first: int) -> list[_Span]:
    """Objects of ``text`` in the order their ``}`` closes (the order json calls its hook)."""
    closed: list[_Span] = []
    stack: list[_Span] = []
    top: _Span | None = None
    line = first
    # findall (plain strings, no match objects) keeps this loop cheap; it runs once per token.
    for token in _JSON_TOKEN.findall(text):
        char = token[0]
        if char == "\n":
            line += 1
            continue
        if char in "}]":
            if top is not None:
                stack.pop()
                if top.is_object:
                    closed.append(top)
                elif stack:
                    stack[-1].arrays.append(top)
                top = stack[-1] if stack else None
            continue
        if top is not None:
            if not top.is_object:
                top.lines.append(line)
            elif top.want_key:
                top.lines.append(line)
                top.want_key = False
                continue
            else:
                top.want_key = True
        if char in "{[":
            top = _Span(line, char == "{")
            stack.append(top)
    return closed


def load_json(text: str, path: str, first: int, table: LineTable, problems: list[Problem]) -> Any:
    """Decode JSON text, recording lines in ``table``; problems instead of exceptions."""
    text = text.removeprefix("\ufeff")
    spans = iter(_scan_json(text, first))

    def register(array: list[Any], span: _Span | None) -> None:
        table[id(array)] = (array, span.start if span else first, span.lines if span else [])
        children = iter(span.arrays if span else ())
        for item in array:
            if type(item) is list:
                register(item, next(children, None))

    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        span = next(spans, None)
        key_lines: Iterator[int] = iter(span.lines if span else ())
        arrays = iter(span.arrays if span else ())
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key, value in pairs:
            line = next(key_lines, span.start if span else first)
            earlier = lines.get(key)
            if earlier is not None:
                problems.append(
                    Problem(path, line, f"duplicate key '{key}' (first at line {earlier})")
                )
            data[key] = value
            lines[key] = line
            if type(value) is list:
                register(value, next(arrays, None))
        table[id(data)] = (data, span.start if span else first, lines)
        return data

    try:
        return json.loads(text, object_pairs_hook=build)
    except json.JSONDecodeError as exc:
        message, line = f"{exc.msg} (column {exc.colno})", first + exc.lineno - 1
    except RecursionError:
        message, line = "nesting too deep", first
    problems.append(Problem(path, line, f"invalid JSON: {message}"))
    return None
