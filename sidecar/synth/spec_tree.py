"""Synthetic spec trees of any size, in every format, valid by construction.

Used by the loader benchmark (5,000 documents and flows must compile in under 2 s) and by tests
that need a large, realistic tree. Every document links into the truth chain, every flow has
bindings and budgets, half the flows are described in SEA and half in manifests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

FLOWS_PER_CONTEXT = 20


@dataclass(frozen=True, slots=True)
class TreeShape:
    """How many of each element a generated tree has."""

    contexts: int
    adrs: int
    prds: int
    reqs_per_prd: int
    sds_per_context: int

    @property
    def flows(self) -> int:
        """Flows in the tree (half SEA, half manifest)."""
        return self.contexts * FLOWS_PER_CONTEXT

    @property
    def documents(self) -> int:
        """Markdown/YAML documents in the tree (ADR, PRD, SDS)."""
        return self.adrs + self.prds + self.contexts * self.sds_per_context

    @classmethod
    def for_total(cls, total: int) -> TreeShape:
        """A shape whose documents plus flows is about ``total`` (80% flows)."""
        contexts = max(1, round(total * 0.8 / FLOWS_PER_CONTEXT))
        docs = max(3, total - contexts * FLOWS_PER_CONTEXT)
        prds = max(1, docs // 20)
        sds = max(1, (docs // 2) // contexts)
        adrs = max(1, docs - prds - sds * contexts)
        return cls(contexts, adrs, prds, 10, sds)


def write_spec_tree(root: Path, shape: TreeShape) -> None:
    """Write a valid spec tree of ``shape`` under ``root``."""
    for d in ("adr", "prd", "sds", "sea", "manifests"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for i in range(1, shape.adrs + 1):
        sup = f"**Supersedes**: ADR-{i - 1:03d}\n" if i > 1 and i % 10 == 0 else ""
        (root / "adr" / f"{i:03d}-decision-{i}.md").write_text(
            f"# ADR-{i:03d}: Decision number {i}\n\n**Status**: Accepted\n{sup}\n"
            f"## Context\nWe needed to decide thing {i}.\n\n## Decision\nWe decided it.\n"
        )
    for p in range(1, shape.prds + 1):
        rows = "\n".join(
            f"| REQ-{p * 100 + r:03d} | Requirement {r} of PRD {p} | Must |"
            for r in range(shape.reqs_per_prd)
        )
        adr = (p - 1) % shape.adrs + 1
        (root / "prd" / f"{p:03d}-product-{p}.md").write_text(
            f"---\nid: PRD-{p:03d}\ntitle: Product area {p}\nstatus: approved\n"
            f"satisfies: [ADR-{adr:03d}]\n---\n# PRD-{p:03d}: Product area {p}\n\n"
            f"| ID | Requirement | Priority |\n|----|----|----|\n{rows}\n"
        )
    for c in range(shape.contexts):
        _write_context(root, shape, c)


def _sds_id(shape: TreeShape, c: int, k: int = 0) -> str:
    return f"SDS-{1000 + c * shape.sds_per_context + k}"


def _write_context(root: Path, shape: TreeShape, c: int) -> None:
    ctx = f"ctx{c}"
    prd = c % shape.prds + 1
    for k in range(shape.sds_per_context):
        sid = _sds_id(shape, c, k)
        (root / "sds" / f"{sid.lower()}.md").write_text(
            f"---\nid: {sid}\ntitle: Design of {ctx} part {k}\nstatus: accepted\n"
            f"bounded_context: {ctx}\nsatisfies: [PRD-{prd:03d}]\n---\n"
            f"# {sid}: Design of {ctx} part {k}\n\nHow {ctx} works.\n"
        )
    half = FLOWS_PER_CONTEXT // 2
    sea = [f'@namespace "com.example.{ctx}"', f'@context "{ctx}"', f'Entity "Thing{c}" in {ctx}']
    for f in range(half):
        runtime = {"service": f"svc{c}", "span_name": f"{ctx}.Service/SeaOp{f}"}
        budget = {"p95_ms": 100 + f, "p99_ms": 300 + f, "error_rate": 0.01}
        calls = [f"{ctx}:flow:SeaOp{f + 1}"] if f + 1 < half else []
        sea += [
            f'Flow "SeaOp{f}"',
            '  @cqrs { "kind": "command" }',
            f'  @sds "{_sds_id(shape, c)}"',
            f"  @runtime {json.dumps(runtime)}",
            f"  @budget {json.dumps(budget)}",
            f"  @calls {json.dumps(calls)}",
        ]
    sea.append(f'Policy positive_{c} per Constraint Obligation priority 5\n  @rationale "x"')
    (root / "sea" / f"{ctx}.sea").write_text("\n".join(sea) + "\n")
    ops = [
        {
            "flow": f"Op{f}",
            "kind": "query",
            "match": {
                "span_name": f"{ctx}.Service/Op{f}",
                "rpc": {"service": f"{ctx}.Service", "method": f"Op{f}"},
            },
            "budgets": {"p95_ms": 50, "p99_ms": 200, "error_rate": 0.02},
            "attributes": {"required": [f"app.{ctx}.id"]},
            "calls": [f"{ctx}:flow:SeaOp0"],
            "requires_calls": [f"{ctx}:flow:SeaOp0"],
            "policies": [f"limit_{c}"],
        }
        for f in range(half)
    ]
    manifest = {
        "manifestVersion": "1.0",
        "context": {"name": ctx, "sdsId": _sds_id(shape, c), "prdIds": [f"PRD-{prd:03d}"]},
        "behavior": {
            "services": [f"svc{c}"],
            "operations": ops,
            "metrics": [{"name": f"app.{ctx}.count", "unit": "1", "range": {"min": 0}}],
            "ignore": [{"span_name": "grpc.health.v1.Health/Check"}],
            "policies": [
                {
                    "id": f"limit_{c}",
                    "when": {"flow": "Op0"},
                    "assert": f"attributes['app.{ctx}.id'] != ''",
                }
            ],
        },
    }
    (root / "manifests" / f"{ctx}.manifest.json").write_text(json.dumps(manifest, indent=1))
