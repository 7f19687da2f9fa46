"""ADR/PRD/SDS markdown parser: classification, metadata, ids, edges, requirements, robustness."""

from __future__ import annotations

import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.spec.markdown import canonical_document_id, parse_markdown
from sidecar.spec.model import EdgeKind, Location, NodeKind, SpecFragment

SDS_FRONT_MATTER = """\
---
id: SDS-041
title: Checkout design
status: Accepted
bounded_context: checkout
satisfies:
  - PRD-012
  - ADR-29
related: [ADR-022]
supersedes: SDS-040
owner: Checkout team
date: 2024-03-01
---

# SDS-041: Checkout design

Body text.
"""

ADR_HEADERS = """\
# ADR-029: Observability with OpenTelemetry

**Status**: Accepted
**Related ADRs**: ADR-022, ADR-028
**Related PRDs**: [PRD-010](../prd/010-x.md)
**Supersedes**: ADR-012
**Bounded Context**: `platform`
**Deciders**: SRE

## Context

**Status**: Rejected (a bold line below the header block is not metadata)
"""

PRD = """\
# PRD-012: Checkout

**Status**: Approved
**Satisfies**: ADR-033 (Kernel-Shell, ADR-099), ADR-034

## Requirements

| ID | Requirement | Priority | Status |
|----|-------------|----------|--------|
| REQ-001 | Place an order | Must | Done |
| **REQ-2** | Pay by card \\| wallet | Should | |

```
| REQ-003 | inside a code block | Must |
```
"""


def parse(path: str, text: str) -> SpecFragment:
    frag = parse_markdown(path, textwrap.dedent(text))
    assert frag is not None
    return frag


def refs(frag: SpecFragment) -> list[tuple[str, str, int, EdgeKind | None]]:
    return [(r.what, r.target, r.loc.line, r.edge.kind if r.edge else None) for r in frag.refs]


# -- classification ------------------------------------------------------------------------------


def test_markdown_outside_document_directories_without_an_id_title_is_not_a_document() -> None:
    assert parse_markdown("README.md", "# Online Boutique\n\nSome text.\n") is None
    assert parse_markdown("docs/guide.md", "---\nid: ADR-001\n---\n# Guide\n") is None
    assert parse_markdown("docs/adrs-index.md", "# Index\n") is None


def test_title_line_makes_a_document_anywhere() -> None:
    frag = parse("notes/observability.md", "# ADR-029: Observability\n")
    (node,) = frag.nodes
    assert (node.id, node.kind, node.title, node.loc) == (
        "ADR-029",
        NodeKind.ADR,
        "Observability",
        Location("notes/observability.md", 1),
    )
    assert node.origin == "markdown"


def test_directory_gives_kind_and_file_name_gives_id() -> None:
    frag = parse("specs/adr/029-observability.md", "# Observability\n\nText.\n")
    (node,) = frag.nodes
    assert (node.id, node.kind, node.title, node.loc.line) == (
        "ADR-029",
        NodeKind.ADR,
        "Observability",
        1,
    )
    assert parse("x/PRD/0012-foo.md", "").nodes[0].id == "PRD-012"
    assert parse("sds/sds-1000.md", "").nodes[0].id == "SDS-1000"


def test_directory_index_files_are_not_documents() -> None:
    assert parse_markdown("specs/adr/README.md", "# Architecture decisions\n") is None
    assert parse_markdown("specs/adr/index.md", "") is None
    assert parse("specs/adr/README.md", "# ADR-001: Real one\n").nodes[0].id == "ADR-001"


def test_no_id_anywhere_is_a_problem_at_line_1() -> None:
    frag = parse("specs/adr/observability.md", "# Observability\n")
    assert [str(p) for p in frag.problems] == [
        "specs/adr/observability.md:1: no ADR id in front matter, title or file name"
    ]
    assert frag.nodes == []
    frag = parse("specs/prd/checkout.md", "text\n")
    assert [p.message for p in frag.problems] == ["no PRD id in front matter, title or file name"]


# -- front matter --------------------------------------------------------------------------------


def test_front_matter_metadata_node_and_edges() -> None:
    frag = parse("specs/sds/041-checkout.md", SDS_FRONT_MATTER)
    assert frag.problems == []
    (node,) = frag.nodes
    assert (node.id, node.kind, node.title, node.status, node.context, node.loc.line) == (
        "SDS-041",
        NodeKind.SDS,
        "Checkout design",
        "accepted",
        "checkout",
        2,
    )
    assert node.props == {"owner": "Checkout team", "date": "2024-03-01"}
    assert refs(frag) == [
        ("SDS-041: satisfies", "PRD-012", 7, EdgeKind.SATISFIES),
        ("SDS-041: satisfies", "ADR-029", 8, EdgeKind.SATISFIES),
        ("SDS-041: related", "ADR-022", 9, EdgeKind.RELATED_TO),
        ("SDS-041: supersedes", "SDS-040", 10, EdgeKind.SUPERSEDES),
    ]
    assert all(r.edge is not None and r.edge.src == "SDS-041" for r in frag.refs)
    assert [(e.src, e.dst, e.kind, e.loc.line) for e in frag.edges] == [
        ("SDS-041", "context:checkout", EdgeKind.IN_CONTEXT, 5)
    ]


def test_nested_sds_and_metadata_forms() -> None:
    frag = parse(
        "design/checkout.md",
        """\
        ---
        sds:
          id: SDS-041
          title: Checkout
          bounded_context: checkout
          satisfies_prds: [PRD-012]
          satisfies_adrs: [ADR-029, ADR-030]
        ---
        # SDS-041: Checkout
        """,
    )
    assert frag.problems == []
    assert (frag.nodes[0].id, frag.nodes[0].context) == ("SDS-041", "checkout")
    assert [(t, line) for _, t, line, _ in refs(frag)] == [
        ("PRD-012", 6),
        ("ADR-029", 7),
        ("ADR-030", 7),
    ]
    frag = parse(
        "prd/x.md",
        "---\nmetadata:\n  id: PRD-7\n  title: T\n  satisfies: [ADR-1]\n---\n",
    )
    assert (frag.nodes[0].id, frag.nodes[0].title) == ("PRD-007", "T")
    assert refs(frag) == [("PRD-007: satisfies", "ADR-001", 5, EdgeKind.SATISFIES)]


def test_invalid_yaml_is_a_problem_at_the_file_line() -> None:
    frag = parse("adr/001-x.md", "---\nid: ADR-001\ntitle: [unclosed\nstatus: x\n---\n# Title\n")
    (problem,) = frag.problems
    assert problem.path == "adr/001-x.md"
    assert 3 <= problem.line <= 5
    assert problem.message.startswith("front matter is not valid YAML: ")
    assert "(column " in problem.message
    # the file name still gives the document its id
    assert frag.nodes[0].id == "ADR-001"


def test_yaml_error_points_at_the_offending_line() -> None:
    frag = parse("adr/001-x.md", "---\nid: ADR-001\ntitle: a: b\n---\n")
    assert [p.line for p in frag.problems] == [3]


def test_bad_yaml_scalars_and_shapes_never_raise() -> None:
    frag = parse("adr/001-x.md", "---\ndate: 2020-13-45\n---\n")
    assert [p.message.startswith("front matter is not valid YAML") for p in frag.problems] == [True]
    frag = parse("adr/001-x.md", "---\n- a\n- b\n---\n")
    assert [p.message for p in frag.problems] == [
        "front matter must be a mapping of keys (id, title, ...), got a list"
    ]
    frag = parse("adr/001-x.md", "---\nid: ADR-001\n")
    assert [(p.line, p.message) for p in frag.problems] == [
        (1, "front matter opened here is never closed with '---'")
    ]


def test_front_matter_field_types() -> None:
    frag = parse(
        "adr/001-x.md",
        "---\nid: 7\ntitle: [a]\nsatisfies: {a: 1}\nrelated: [ADR-002, 3, nonsense]\n---\n",
    )
    assert frag.nodes[0].id == "ADR-007"  # a bare number takes the document's prefix
    assert sorted((p.line, p.message) for p in frag.problems) == [
        (3, "'title' must be a string, got a list"),
        (4, "'satisfies' must be a list of document ids, got a mapping"),
        (5, "'related' item 'nonsense' is not a document id like ADR-029"),
        (5, "'related' items must be document ids, got a number"),
    ]
    assert [r.target for r in frag.refs] == ["ADR-002"]


# -- header lines --------------------------------------------------------------------------------


def test_bold_header_lines() -> None:
    frag = parse("docs/adr/029-observability.md", ADR_HEADERS)
    assert frag.problems == []
    (node,) = frag.nodes
    assert (node.id, node.title, node.status, node.context) == (
        "ADR-029",
        "Observability with OpenTelemetry",
        "accepted",
        "platform",
    )
    assert node.props == {"deciders": "SRE"}
    assert refs(frag) == [
        ("ADR-029: related", "ADR-022", 4, EdgeKind.RELATED_TO),
        ("ADR-029: related", "ADR-028", 4, EdgeKind.RELATED_TO),
        ("ADR-029: related", "PRD-010", 5, EdgeKind.RELATED_TO),
        ("ADR-029: supersedes", "ADR-012", 6, EdgeKind.SUPERSEDES),
    ]
    assert [(e.dst, e.kind, e.loc.line) for e in frag.edges] == [
        ("context:platform", EdgeKind.IN_CONTEXT, 7)
    ]


def test_header_variants_colon_inside_bold_bullets_and_lists() -> None:
    frag = parse(
        "adr/005-x.md",
        """\
        # ADR-005: X

        - **Status:** Proposed
        - **ID**: ADR-005
        * **Related ADRs**:
          - ADR-001 (first)
          - ADR-002
        """,
    )
    assert frag.problems == []
    assert frag.nodes[0].status == "proposed"
    assert [(t, line) for _, t, line, _ in refs(frag)] == [("ADR-001", 6), ("ADR-002", 7)]


def test_satisfies_strips_parenthetical_notes() -> None:
    frag = parse("prd/012-checkout.md", PRD)
    satisfies = [(t, line) for what, t, line, _ in refs(frag) if what == "PRD-012: satisfies"]
    assert satisfies == [("ADR-033", 4), ("ADR-034", 4)]


def test_status_section_when_there_is_no_header() -> None:
    frag = parse("adr/001-x.md", "# ADR-001: X\n\n## Status\n\nSuperseded by ADR-002\n")
    assert frag.nodes[0].status == "superseded by adr-002"


def test_front_matter_wins_over_headers_and_lists_merge() -> None:
    frag = parse(
        "adr/001-x.md",
        "---\nstatus: Accepted\nrelated: [ADR-002]\n---\n# ADR-001: X\n"
        "**Status**: Draft\n**Related ADRs**: ADR-002, ADR-003\n",
    )
    assert frag.nodes[0].status == "accepted"
    assert [(t, line) for _, t, line, _ in refs(frag)] == [("ADR-002", 3), ("ADR-003", 7)]


# -- ids -----------------------------------------------------------------------------------------


def test_canonical_document_ids() -> None:
    assert canonical_document_id("ADR-029") == "ADR-029"
    assert canonical_document_id("adr-29") == "ADR-029"
    assert canonical_document_id("ADR-0029") == "ADR-029"
    assert canonical_document_id("SDS-1000") == "SDS-1000"
    assert canonical_document_id(" REQ_7 ") == "REQ-007"
    assert canonical_document_id("ADR-") is None
    assert canonical_document_id("ADR-12a") is None


def test_id_precedence_and_disagreements() -> None:
    frag = parse("adr/003-x.md", "---\nid: ADR-001\n---\n# ADR-002: X\n")
    assert frag.nodes[0].id == "ADR-001"
    assert frag.nodes[0].loc.line == 2
    assert [(p.line, p.message) for p in frag.problems] == [
        (4, "title id ADR-002 differs from the front matter id ADR-001")
    ]


def test_id_of_the_wrong_kind_falls_through() -> None:
    frag = parse("adr/004-x.md", "---\nid: PRD-001\n---\n# X\n")
    assert frag.nodes[0].id == "ADR-004"
    assert [(p.line, p.message) for p in frag.problems] == [
        (2, "id 'PRD-001' has the wrong kind: expected ADR-nnn")
    ]
    frag = parse("adr/x.md", "---\nid: nonsense\n---\n")
    assert [p.message for p in frag.problems] == [
        "id 'nonsense' is not a document id like ADR-029",
        "no ADR id in front matter, title or file name",
    ]


def test_self_references_and_duplicates_are_dropped() -> None:
    frag = parse("adr/001-x.md", "# ADR-001: X\n**Related ADRs**: ADR-001, ADR-2, ADR-002\n")
    assert [r.target for r in frag.refs] == ["ADR-002"]


# -- requirements --------------------------------------------------------------------------------


def test_prd_requirement_rows_become_req_nodes() -> None:
    frag = parse("prd/012-checkout.md", PRD)
    assert frag.problems == []
    prd, *reqs = frag.nodes
    assert (prd.id, prd.status) == ("PRD-012", "approved")
    assert [(r.id, r.kind, r.title, r.loc.line, r.status) for r in reqs] == [
        ("REQ-001", NodeKind.REQ, "Place an order", 10, "done"),
        ("REQ-002", NodeKind.REQ, "Pay by card \\| wallet", 11, None),
    ]
    assert reqs[0].props == {"Priority": "Must", "Status": "Done"}
    assert all(r.origin == "markdown" for r in reqs)
    part_of = [(e.src, e.dst, e.loc.line) for e in frag.edges if e.kind is EdgeKind.PART_OF]
    assert part_of == [("REQ-001", "PRD-012", 10), ("REQ-002", "PRD-012", 11)]
    assert all(r.edge is None or r.edge.kind is not EdgeKind.PART_OF for r in frag.refs)


def test_duplicate_requirement_is_a_problem() -> None:
    text = "# PRD-001: X\n| ID | T |\n|--|--|\n| REQ-001 | a |\n| REQ-1 | b |\n"
    frag = parse("prd/001-x.md", text)
    assert [str(p) for p in frag.problems] == [
        "prd/001-x.md:5: REQ-001 is declared twice in this file (first at line 4)"
    ]
    assert [n.id for n in frag.nodes] == ["PRD-001", "REQ-001"]


def test_requirement_rows_outside_prds_are_not_nodes() -> None:
    frag = parse("sds/020-x.md", "# SDS-020: X\n| Req | Flow |\n|--|--|\n| REQ-001 | F |\n")
    assert [n.id for n in frag.nodes] == ["SDS-020"]


def test_requirements_inherit_the_prd_context() -> None:
    text = "---\nbounded_context: shop\n---\n# PRD-001: X\n| REQ-001 | a |\n"
    frag = parse("prd/001-x.md", text)
    assert [n.context for n in frag.nodes] == ["shop", "shop"]


# -- robustness ----------------------------------------------------------------------------------


def assert_well_formed(path: str, text: str) -> None:
    frag = parse_markdown(path, text)
    if frag is None:
        return
    last = len(text.splitlines()) + 1
    for item in (*frag.problems, *frag.notes):
        assert item.path == path
        assert 1 <= item.line <= last, (item, last)
    for loc in (*(n.loc for n in frag.nodes), *(r.loc for r in frag.refs)):
        assert loc.path == path and 1 <= loc.line <= last


_PIECES = [
    "\n", "---\n", "...\n", "  ", "- ", "id: ", "ADR-001", "PRD-2", "REQ-003", "SDS-9", "[", "]",
    "{", "}", ":", ",", "# ", "## ", "**Status**: ", "**Satisfies**: ", "**Related ADRs**:",
    "**Status:** ", "| ", " |", "|---|---|\n", "```\n", "(", ")", "title: ", "satisfies: ",
    "sds: ", "metadata: ", "bounded_context: ", "&a ", "*a ", "!!python/object ", "2020-13-45",
    '"', "'", "\t", "\r", "\x85", "\u2028", "\ufeff", "9" * 30,
]  # fmt: skip
_PATHS = ["specs/adr/001-x.md", "prd/x.md", "sds/012-y.md", "notes/readme.md", "adr/README.md"]


@settings(max_examples=300)
@given(st.sampled_from(_PATHS), st.text())
def test_never_raises_on_random_text(path: str, text: str) -> None:
    assert_well_formed(path, text)


@settings(max_examples=500)
@given(st.sampled_from(_PATHS), st.lists(st.sampled_from(_PIECES), max_size=60).map("".join))
def test_never_raises_on_markdown_like_text(path: str, text: str) -> None:
    assert_well_formed(path, text)


@settings(max_examples=200)
@given(st.sampled_from(_PATHS), st.binary(max_size=400))
def test_never_raises_on_random_bytes(path: str, data: bytes) -> None:
    assert_well_formed(path, data.decode("utf-8", errors="replace"))


def test_never_raises_on_any_truncation_of_the_examples() -> None:
    for path, source in (
        ("specs/sds/041-checkout.md", SDS_FRONT_MATTER),
        ("docs/adr/029-observability.md", ADR_HEADERS),
        ("prd/012-checkout.md", PRD),
    ):
        for end in range(len(source) + 1):
            assert_well_formed(path, source[:end])
