"""What the checks derive once and keep across batches (:class:`CheckMemo`).

Tables over the correlator's label and rule-set codes (labels and rule sets only grow, so the
tables stay valid until they grow or the index changes), compiled policy assertions and their
verdicts per attribute values, and call-pattern verdicts per caller and callees.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from sidecar.evidence.batch import StringPool
from sidecar.spec.expr import Assertion, ExpressionError, compile_assertion
from sidecar.spec_index.index import RuntimeIndex

#: A caller's node code and its callees' node codes in call order; its call verdicts
#: (unexpected, missing, out of order).
CallPattern = tuple[int, tuple[int, ...]]
Verdict = tuple[bool, bool, bool]
#: Attribute keys and, per key (row) and label code (column): the node's operation lists it.
KeyTable = tuple[tuple[str, ...], npt.NDArray[np.bool_]]
#: Rules whose links make a row the operation's *own* span (attributes apply to it);
#: rows linked through a parent or a join inherit the node but are not that span.
_OWN_SPAN_RULES = frozenset({"sea.spec_node", "sea.flow", "bind.span_name", "bind.rpc",
                             "bind.http", "bind.messaging", "heuristic.name"})  # fmt: skip
_VERDICTS = 65_536


class CheckMemo:
    """What the checks derive from the index, the correlator's labels and rule sets, and
    policy verdicts, kept across batches (labels and rule sets only grow, so tables over
    their codes stay valid until they grow or the index changes)."""

    def __init__(self) -> None:
        self._key: tuple[int, int] = (0, -1)
        self.deprecated = np.zeros(0, np.bool_)
        #: attribute key -> per label code: the node's operation requires / forbids it.
        self.required: dict[str, npt.NDArray[np.bool_]] = {}
        self.forbidden: dict[str, npt.NDArray[np.bool_]] = {}
        #: The same as matrices, so a batch tests every key in a few array operations.
        self.required_table: KeyTable = ((), np.zeros((0, 0), np.bool_))
        self.forbidden_table: KeyTable = ((), np.zeros((0, 0), np.bool_))
        self.own_sets = np.zeros(0, np.bool_)
        self.assertions: dict[str, Assertion | None] = {}
        self.verdicts: OrderedDict[tuple[str, tuple[str | None, ...]], bool] = OrderedDict()
        self._calls: dict[CallPattern, Verdict] = {}
        self._calls_for: tuple[RuntimeIndex, StringPool] | None = None

    def node_tables(self, index: RuntimeIndex, labels: StringPool) -> CheckMemo:
        """Bring the per-label tables up to date with the index and the labels."""
        key = (id(index), len(labels))
        if key == self._key:
            return self
        n = len(labels)
        self.deprecated = np.zeros(n, np.bool_)
        self.required, self.forbidden = {}, {}
        for code, label in enumerate(labels.values):
            entry = index.nodes.get(label) if code else None
            if entry is not None and entry.deprecated:
                self.deprecated[code] = True
            op = index.operations.get(label) if code else None
            if op is None:
                continue
            for table, keys in ((self.required, op.required_attributes),
                                (self.forbidden, op.forbidden_attributes)):  # fmt: skip
                for k in keys:
                    if k not in table:
                        table[k] = np.zeros(n, np.bool_)
                    table[k][code] = True
        self.required_table = _key_table(self.required, n)
        self.forbidden_table = _key_table(self.forbidden, n)
        self._key = key
        return self

    def call_verdicts(self, index: RuntimeIndex, labels: StringPool) -> dict[CallPattern, Verdict]:
        """Call-pattern verdicts for this index and these labels (bounded; node codes keep
        their meaning while the labels do)."""
        key = self._calls_for
        if (
            key is None
            or key[0] is not index
            or key[1] is not labels
            or len(self._calls) > _VERDICTS
        ):
            self._calls, self._calls_for = {}, (index, labels)
        return self._calls

    def own_rule_sets(self, rule_sets: list[tuple[str, ...]]) -> npt.NDArray[np.bool_]:
        """Per rule-set code: does it make a row its operation's own span."""
        if len(self.own_sets) != len(rule_sets):
            self.own_sets = np.array([bool(set(r) & _OWN_SPAN_RULES) for r in rule_sets],
                                     np.bool_)  # fmt: skip
        return self.own_sets

    def assertion(self, text: str) -> Assertion | None:
        """The compiled assertion (None when it does not compile)."""
        if text not in self.assertions:
            try:
                self.assertions[text] = compile_assertion(text)
            except ExpressionError:
                self.assertions[text] = None  # the index is validated at compile time
        return self.assertions[text]

    def verdict(self, assertion: Assertion, values: tuple[str | None, ...]) -> bool:
        """Whether the assertion is false for these attribute values (None: absent)."""
        key = (assertion.text, values)
        found = self.verdicts.get(key)
        if found is None:
            found = self.verdicts[key] = assertion.evaluate({
                k: _typed(v) for k, v in zip(assertion.attribute_keys, values, strict=True)
                if v is not None
            }) is False  # fmt: skip
            if len(self.verdicts) > _VERDICTS:
                self.verdicts.popitem(last=False)
        return found


def _key_table(table: dict[str, npt.NDArray[np.bool_]], n: int) -> KeyTable:
    """A key -> per-label-code table as (keys, matrix)."""
    keys = tuple(table)
    matrix = np.stack([table[k] for k in keys]) if keys else np.zeros((0, n), np.bool_)
    return keys, matrix


def _typed(text: str) -> object:
    """Attribute text back to a number where it is one (policies compare numbers)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text
