"""Line-aware YAML/JSON loading: data, lines of keys and items, and problems instead of raises."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.spec.located_fields import mapping_items, required_name, string_items
from sidecar.spec.model import Location, Problem
from sidecar.spec.operation_fields import FieldReader
from sidecar.spec.yamlpos import Located, load_located

YAML_DOC = """\
# a comment first
name: checkout
list:
  - one
  - two: 2
    three: 3
  - [a, b]
flow: {x: 1,
  y: 2}
nested:
  deeper:
    leaf: true
"""


def yaml_doc(text: str = YAML_DOC, **kwargs: Any) -> Located:
    return load_located(text, "specs/a.yaml", "yaml", **kwargs)


def json_doc(text: str) -> Located:
    return load_located(text, "specs/a.json", "json")


def max_line(text: str) -> int:
    """An upper bound on the last line number any YAML or JSON reader can report."""
    breaks = sum(text.count(c) for c in ("\n", "\r", "\x85", "\u2028", "\u2029"))
    return breaks + 2


def assert_well_formed(doc: Located, text: str, path: str) -> None:
    for problem in doc.problems:
        assert problem.path == path
        assert 1 <= problem.line <= max_line(text), (problem, text)
        assert "\n" not in str(problem)


# --- YAML data and lines -----------------------------------------------------------------------


def test_yaml_data_is_plain_python() -> None:
    doc = yaml_doc()
    assert doc.problems == []
    assert doc.data == {
        "name": "checkout",
        "list": ["one", {"two": 2, "three": 3}, ["a", "b"]],
        "flow": {"x": 1, "y": 2},
        "nested": {"deeper": {"leaf": True}},
    }


def test_yaml_key_lines_item_lines_and_starts() -> None:
    doc = yaml_doc()
    data, lines = doc.data, doc.lines
    assert data is not None
    assert lines.key_line(data, "name") == 2
    assert lines.key_line(data, "list") == 3
    assert [lines.item_line(data["list"], i) for i in range(3)] == [4, 5, 7]
    assert lines.start(data["list"][1]) == 5
    assert lines.key_line(data["list"][1], "three") == 6
    assert lines.key_line(data["flow"], "y") == 9
    assert lines.key_line(data["nested"]["deeper"], "leaf") == 12
    assert lines.start(data) == 2  # the mapping starts at its first key, after the comment


def test_missing_keys_and_foreign_objects_fall_back() -> None:
    doc = yaml_doc()
    assert doc.data is not None
    assert doc.lines.key_line(doc.data["nested"], "nope") == 11
    assert doc.lines.item_line(doc.data["list"], 99) == 4
    assert doc.lines.start({}) == 1
    assert doc.lines.at(doc.data, "flow") == Location("specs/a.yaml", 8)
    assert doc.lines.at_item(doc.data["list"], 1) == Location("specs/a.yaml", 5)


def test_first_line_offsets_every_line() -> None:
    doc = yaml_doc("a: 1\nb:\n  c: 2\n", first_line=5)
    assert doc.data is not None
    assert doc.lines.key_line(doc.data, "a") == 5
    assert doc.lines.key_line(doc.data["b"], "c") == 7
    bad = yaml_doc("a: 1\nb: c: d\n", first_line=5)
    assert [p.line for p in bad.problems] == [6]


def test_loc_of_searches_nested_mappings_for_reader_keys() -> None:
    doc = yaml_doc(
        "op:\n  flow: X\n  budgets:\n    p95_ms: slow\n  match:\n    http: {method: 1}\n"
    )
    assert doc.data is not None
    loc = doc.lines.loc_of(doc.data["op"])
    assert loc("flow").line == 2
    assert loc("p95_ms").line == 4
    assert loc("method").line == 6
    assert loc("absent").line == 2


def test_loc_of_finds_keys_yaml_read_as_numbers() -> None:
    doc = yaml_doc("a: 1\n200: ok\n")
    assert doc.data is not None
    assert doc.lines.loc_of(doc.data)("200").line == 2


def test_anchors_aliases_and_merge_keys() -> None:
    doc = yaml_doc("base: &B {a: 1, b: 2}\nx:\n  <<: *B\n  b: 3\nalias: *B\n")
    assert doc.problems == []
    assert doc.data is not None
    assert doc.data["x"] == {"a": 1, "b": 3}
    assert doc.data["alias"] is doc.data["base"]
    assert doc.lines.key_line(doc.data["x"], "b") == 4
    assert doc.lines.key_line(doc.data["x"], "a") == 1  # where the merged key was written


def test_merge_list_gives_earlier_sources_precedence() -> None:
    doc = yaml_doc("a: &A {k: 1}\nb: &B {k: 2, j: 3}\nc:\n  <<: [*A, *B]\n")
    assert doc.data is not None
    assert doc.data["c"] == {"k": 1, "j": 3}


def test_dates_and_number_lookalikes_stay_text() -> None:
    doc = yaml_doc("d: 2024-01-31\nbad: 2024-13-45\nn: 0b_\nf: ._\nq: '12'\ni: 12\n")
    assert doc.problems == []
    assert doc.data == {
        "d": "2024-01-31",
        "bad": "2024-13-45",
        "n": "0b_",
        "f": "._",
        "q": "12",
        "i": 12,
    }


# --- YAML problems -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: 1\nb: c: d\n",
            "specs/a.yaml:2: invalid YAML: mapping values are not allowed in this context"
            " (column 5)",
        ),
        ("a: 1\nb: 2\na: 3\n", "specs/a.yaml:3: duplicate key 'a' (first at line 1)"),
        ("a: !Ref x\n", "specs/a.yaml:1: invalid YAML: unsupported tag '!Ref' (column 4)"),
        ("a: &A\n  b: *A\n", "specs/a.yaml:2: invalid YAML: alias '*A' refers to its own ancestor"),
        ("a: *nope\n", "specs/a.yaml:1: invalid YAML: found undefined alias '*nope'"),
        ("? [a]\n: 1\n", "specs/a.yaml:1: invalid YAML: a mapping key must be a scalar"),
        (
            "a: 1\nb:\n  <<: 5\n",
            "specs/a.yaml:3: invalid YAML: '<<' must merge a mapping or a list of mappings",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "specs/a.yaml:2: invalid YAML: expected a single document in the stream,"
            " but found another document",
        ),
        (
            "a: 1\nb: \x01\n",
            "specs/a.yaml:2: invalid YAML: unacceptable character #x0001:"
            " control characters are not allowed (column 4)",
        ),
        (
            "a: 1\nb: \ud800\n",
            "specs/a.yaml:2: invalid YAML: character '\\ud800' is not valid Unicode"
            " (a lone surrogate)",
        ),
        ("- a\n- b\n", "specs/a.yaml:1: expected a mapping at the top level, got a list"),
        ("", "specs/a.yaml:1: expected a mapping at the top level, got an empty document"),
        ("just text", "specs/a.yaml:1: expected a mapping at the top level, got a string"),
    ],
)
def test_yaml_problem_messages(text: str, expected: str) -> None:
    doc = yaml_doc(text)
    assert [str(p) for p in doc.problems] == [expected]


def test_duplicate_key_keeps_the_data_readable() -> None:
    doc = yaml_doc("a: 1\na: 2\n")
    assert doc.data == {"a": 2}


def test_explicitly_overriding_a_merged_key_is_not_a_duplicate() -> None:
    assert yaml_doc("b: &B {a: 1}\nc:\n  <<: *B\n  a: 2\n").problems == []


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    doc = yaml_doc("a: " + "[" * 5000)
    assert doc.data is None
    assert doc.problems[0].message.startswith("invalid YAML: exceeded maximum nesting depth")


# --- JSON --------------------------------------------------------------------------------------

JSON_DOC = """\
{
  "name": "checkout",
  "list": [1,
    "two", {"three": [
      "x"]}],
  "obj": {"k": true}
}"""


def test_json_key_and_item_lines() -> None:
    doc = json_doc(JSON_DOC)
    assert doc.problems == []
    data, lines = doc.data, doc.lines
    assert data is not None
    assert lines.key_line(data, "name") == 2
    assert [lines.item_line(data["list"], i) for i in range(3)] == [3, 4, 4]
    assert lines.key_line(data["list"][2], "three") == 4
    assert lines.item_line(data["list"][2]["three"], 0) == 5
    assert lines.key_line(data["obj"], "k") == 6
    assert lines.start(data["obj"]) == 6


def test_json_that_yaml_cannot_read_is_fine() -> None:
    text = '{\n\t"' + "k" * 2000 + '": 1,\n\t"e": "\\ud83d\\ude00 \\/",\n\t"n": NaN\n}'
    doc = json_doc(text)
    assert doc.problems == []
    assert doc.data is not None
    assert doc.lines.key_line(doc.data, "e") == 3
    assert doc.data["e"] == "\U0001f600 /"


def test_json_key_split_from_its_colon_by_a_newline() -> None:
    doc = json_doc('{"a"\n  :\n  [1,\n 2], "b"\n: {"c": 1}}')
    assert doc.data is not None
    assert doc.lines.key_line(doc.data, "b") == 4
    assert doc.lines.item_line(doc.data["a"], 1) == 4
    assert doc.lines.key_line(doc.data["b"], "c") == 5


def test_json_byte_order_mark_is_accepted() -> None:
    assert json_doc('\ufeff{"a": 1}').data == {"a": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{\n  "a": 1,\n  "b": [1, 2] "c": 3\n}',
            "specs/a.json:3: invalid JSON: Expecting ',' delimiter (column 15)",
        ),
        ('{"a": 1,\n "a": 2}', "specs/a.json:2: duplicate key 'a' (first at line 1)"),
        ("[1, 2]", "specs/a.json:1: expected a mapping at the top level, got a list"),
        ("", "specs/a.json:1: invalid JSON: Expecting value (column 1)"),
        ("[" * 100_000, "specs/a.json:1: invalid JSON: nesting too deep"),
    ],
)
def test_json_problem_messages(text: str, expected: str) -> None:
    assert [str(p) for p in json_doc(text).problems] == [expected]


# Characters libyaml accepts raw (it refuses surrogate-pair escapes and control characters).
texts = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp")), max_size=4
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)


def all_lines(doc: Located) -> list[Any]:
    """Every key and item line of a document, in document order."""
    out: list[Any] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            out.append(("start", doc.lines.start(value)))
            for key, item in value.items():
                out.append((key, doc.lines.key_line(value, key)))
                walk(item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                out.append((index, doc.lines.item_line(value, index)))
                walk(item)

    walk(doc.data)
    return out


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(texts, json_values, max_size=5), st.sampled_from([None, 1, 2]))
def test_json_lines_agree_with_yaml_lines_of_the_same_text(data: Any, indent: int | None) -> None:
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    as_json = json_doc(text)
    as_yaml = yaml_doc(text)
    assert as_json.problems == []
    assert as_json.data == data
    if as_yaml.problems == [] and as_yaml.data == data:  # YAML 1.1 may read some JSON otherwise
        assert all_lines(as_json) == all_lines(as_yaml)


# --- never raises ------------------------------------------------------------------------------

yamlish = st.text(
    alphabet=st.sampled_from(list("ab:- \n\t{}[],&*!|>'\"#<?%@`\\\x00\r\u2028")) | st.characters(),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(yamlish, st.sampled_from(["yaml", "json"]))
def test_any_text_loads_without_raising(text: str, fmt: str) -> None:
    path = f"specs/x.{fmt}"
    doc = load_located(text, path, "json" if fmt == "json" else "yaml")
    assert_well_formed(doc, text, path)
    assert doc.data is None or isinstance(doc.data, dict)


def test_every_prefix_of_a_document_loads_without_raising() -> None:
    for fmt, text in (("yaml", YAML_DOC), ("json", JSON_DOC)):
        path = f"specs/x.{fmt}"
        for end in range(len(text) + 1):
            doc = load_located(text[:end], path, "json" if fmt == "json" else "yaml")
            assert_well_formed(doc, text[:end], path)


# --- walking helpers ---------------------------------------------------------------------------


def reader_for(doc: Located, data: Any, owner: str = "thing") -> FieldReader:
    return FieldReader(owner, doc.lines.loc_of(data), [])


def test_mapping_items_reports_non_mappings_at_their_line() -> None:
    doc = yaml_doc("ops:\n  - {flow: A}\n  - just text\n  - flow: B\n")
    assert doc.data is not None
    reader = reader_for(doc, doc.data)
    items = mapping_items(doc.lines, reader, doc.data, "ops")
    assert [(n, item["flow"], loc.line) for n, item, loc in items] == [(1, "A", 2), (3, "B", 4)]
    assert reader.problems == [
        Problem("specs/a.yaml", 3, "thing: ops #2 must be a mapping, got a string")
    ]


def test_mapping_items_wants_a_list() -> None:
    doc = yaml_doc("x: 1\nops: {flow: A}\n")
    assert doc.data is not None
    reader = reader_for(doc, doc.data)
    assert mapping_items(doc.lines, reader, doc.data, "ops") == []
    assert [str(p) for p in reader.problems] == [
        "specs/a.yaml:2: thing: 'ops' must be a list, got a mapping"
    ]
    assert mapping_items(doc.lines, reader, doc.data, "absent") == []


def test_string_items_give_each_item_its_line() -> None:
    doc = yaml_doc("ids:\n  - PRD-1\n  - PRD-2\none: PRD-3\n")
    assert doc.data is not None
    reader = reader_for(doc, doc.data)
    assert [(v, loc.line) for v, loc in string_items(doc.lines, reader, doc.data, "ids")] == [
        ("PRD-1", 2),
        ("PRD-2", 3),
    ]
    assert [(v, loc.line) for v, loc in string_items(doc.lines, reader, doc.data, "one")] == [
        ("PRD-3", 4)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: 1\n", "specs/a.yaml:1: thing: 'name' is required"),
        ("x: 1\nname:\n", "specs/a.yaml:2: thing: 'name' is required"),
        ("name: a:b\n", "specs/a.yaml:1: thing: 'name' must be a plain name, got 'a:b'"),
        ("name: [a]\n", "specs/a.yaml:1: thing: 'name' must be a string, got a list"),
    ],
)
def test_required_name_problems(text: str, expected: str) -> None:
    doc = yaml_doc(text)
    assert doc.data is not None
    reader = reader_for(doc, doc.data)
    assert required_name(doc.lines, reader, doc.data, "name") is None
    assert [str(p) for p in reader.problems] == [expected]


def test_required_name_strips_and_accepts_numbers() -> None:
    doc = yaml_doc("name: ' Charge '\nid: 41\n")
    assert doc.data is not None
    reader = reader_for(doc, doc.data)
    assert required_name(doc.lines, reader, doc.data, "name") == "Charge"
    assert required_name(doc.lines, reader, doc.data, "id") == "41"
    assert reader.problems == []
