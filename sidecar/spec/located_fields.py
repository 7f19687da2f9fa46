"""Walking documents loaded by :mod:`sidecar.spec.yamlpos`, with the location of every item."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sidecar.spec.model import Location, Problem
from sidecar.spec.operation_fields import FieldReader, type_name
from sidecar.spec.yamlpos import LineMap


def mapping_items(
    lines: LineMap, reader: FieldReader, parent: Mapping[str, Any], key: str
) -> list[tuple[int, dict[Any, Any], Location]]:
    """The mappings listed under ``parent[key]`` as (1-based number, mapping, location).

    A missing list is empty; anything that is not a mapping is reported and skipped.
    """
    value = parent.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        reader.problem(key, f"'{key}' must be a list, got {type_name(value)}")
        return []
    out: list[tuple[int, dict[Any, Any], Location]] = []
    for index, item in enumerate(value):
        loc = lines.at_item(value, index)
        if isinstance(item, dict):
            out.append((index + 1, item, loc))
        else:
            message = f"{reader.owner}: {key} #{index + 1} must be a mapping, got {type_name(item)}"
            reader.problems.append(Problem.at(loc, message))
    return out


def string_items(
    lines: LineMap, reader: FieldReader, parent: Mapping[str, Any], key: str
) -> list[tuple[str, Location]]:
    """The strings under ``parent[key]`` with the line of each (a lone string is a list of one)."""
    values = reader.strings(parent, key)
    raw = parent.get(key)
    if isinstance(raw, list):
        return [(value, lines.at_item(raw, index)) for index, value in enumerate(values)]
    return [(value, lines.at(parent, key)) for value in values]


def required_name(
    lines: LineMap, reader: FieldReader, data: Mapping[str, Any], key: str
) -> str | None:
    """A required plain name (no ``:``, since ids are built as ``<context>:<kind>:<name>``)."""
    if data.get(key) is None:
        message = f"{reader.owner}: '{key}' is required"
        reader.problems.append(Problem.at(lines.at(data, key), message))
        return None
    value = reader.string(data, key)
    if value is None:
        return None
    value = value.strip()
    if not value or ":" in value:
        reader.problem(key, f"'{key}' must be a plain name, got '{value}'")
        return None
    return value
