"""The small, safe expression language of manifest policies (``assert:``).

An assertion is a Python-syntax expression restricted to: literals, ``attributes['key']``,
the names ``name``, ``service``, ``duration_ms`` and ``status``, comparisons (including ``in``),
``and``/``or``/``not`` and ``+ - * /``. No calls, no attribute access, no comprehensions: it
is parsed with :mod:`ast` and every node is checked against that list, so nothing a spec author
writes can run code. Evaluation returns None when an attribute it reads is absent (the policy
does not apply to that item) instead of guessing.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

VARIABLES = ("name", "service", "duration_ms", "status")

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


class ExpressionError(ValueError):
    """An assertion uses syntax outside the policy language."""


class _Missing(Exception):
    """An attribute the assertion reads is absent from the item."""


@dataclass(frozen=True, slots=True)
class Assertion:
    """A checked policy assertion, ready to evaluate against one item."""

    text: str
    tree: ast.Expression
    attribute_keys: tuple[str, ...]

    def evaluate(self, attributes: Mapping[str, Any], **variables: Any) -> bool | None:
        """True/False, or None when an attribute it needs is absent or types do not compare."""
        try:
            return bool(_eval(self.tree.body, attributes, variables))
        except (_Missing, TypeError, ZeroDivisionError):
            return None


def compile_assertion(text: str) -> Assertion:
    """Parse and check an assertion; raises :class:`ExpressionError` saying what is not allowed."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"{exc.msg} (column {exc.offset})") from None
    keys: list[str] = []
    names = 0
    for node in ast.walk(tree):
        _check(node, keys)
        names += isinstance(node, ast.Name) and node.id == "attributes"
    if names != len(keys):
        raise ExpressionError("'attributes' must be used as attributes['key']")
    return Assertion(text, tree, tuple(dict.fromkeys(keys)))


def _check(node: ast.AST, keys: list[str]) -> None:
    allowed = (
        ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
        ast.Compare, ast.BinOp, ast.Constant, ast.Name, ast.Load, ast.Subscript,
        ast.List, ast.Tuple, *_COMPARE, *_BINARY,
    )  # fmt: skip
    if not isinstance(node, allowed):
        raise ExpressionError(f"'{type(node).__name__}' is not allowed in a policy assertion")
    if isinstance(node, ast.Name) and node.id not in (*VARIABLES, "attributes"):
        raise ExpressionError(
            f"unknown name '{node.id}' (use attributes['key'] or one of {', '.join(VARIABLES)})"
        )
    if isinstance(node, ast.Subscript):
        if not (isinstance(node.value, ast.Name) and node.value.id == "attributes"):
            raise ExpressionError("only attributes['key'] may be subscripted")
        if not (isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str)):
            raise ExpressionError("attributes[...] takes a quoted attribute key")
        keys.append(node.slice.value)


def _eval(node: ast.expr, attrs: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Subscript):
        key = node.slice.value  # type: ignore[attr-defined]  # checked in _check
        if key not in attrs:
            raise _Missing
        return attrs[key]
    if isinstance(node, ast.Name):
        if node.id not in variables:
            raise _Missing
        return variables[node.id]
    if isinstance(node, ast.List | ast.Tuple):
        return [_eval(e, attrs, variables) for e in node.elts]
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, attrs, variables)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        fn = _BINARY[type(node.op)]
        return fn(_eval(node.left, attrs, variables), _eval(node.right, attrs, variables))
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, attrs, variables) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, attrs, variables)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _eval(right_node, attrs, variables)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    raise ExpressionError(f"'{type(node).__name__}' is not allowed")  # unreachable after _check
