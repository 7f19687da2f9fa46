"""Benchmark: load + validate + compile a 5,000 document/flow spec tree (goal: < 2 s).

Measured side by side in one run against a baseline that only reads every file and parses it
with the fastest stock parser (libyaml / json / splitlines): the ratio says what our loader
costs on top of merely reading the tree.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from machine_info import machine

from sidecar.spec.loader import discover
from sidecar.spec_index.codec import encode_index
from sidecar.spec_index.compile import compile_spec_tree
from sidecar.synth.spec_tree import TreeShape, write_spec_tree

ROOT = Path(__file__).resolve().parents[2]
GOAL_S = 2.0


def bare_parse(root: Path) -> int:
    """Baseline: read and parse every spec file with stock parsers, build nothing."""
    n = 0
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for rel in discover(root):
        text = (root / rel).read_text()
        if rel.endswith(".json"):
            json.loads(text)
        elif rel.endswith((".yaml", ".yml")):
            yaml.load(text, Loader=loader)
        else:
            text.splitlines()
        n += 1
    return n


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    """Run the benchmark and print a table with ratios."""
    total = int(os.environ.get("BENCH_SPEC_TOTAL", "5000"))
    repeat = int(os.environ.get("BENCH_REPEAT", "5"))
    shape = TreeShape.for_total(total)
    root = ROOT / ".bench" / f"spec-{total}"
    if not (root / "manifests").is_dir():
        write_spec_tree(root, shape)
    files = len(discover(root))
    compiled = compile_spec_tree(root)
    if not compiled.ok or compiled.index is None:
        print("generated tree is invalid:", *map(str, compiled.problems[:5]), sep="\n  ")
        return 1
    ours = timed(lambda: compile_spec_tree(root), repeat)
    base = timed(lambda: bare_parse(root), repeat)
    payload = encode_index(compiled.index)
    best, med = min(ours), statistics.median(ours)
    print(f"machine: {machine()}")
    print(
        f"tree: {shape.documents} documents + {shape.flows} flows = "
        f"{shape.documents + shape.flows} ({files} files), "
        f"{len(compiled.index.nodes)} nodes, index payload {len(payload) / 1024:.0f} KiB"
    )
    print(f"{'measure':<44}{'best s':>9}{'median s':>10}")
    print(f"{'load+validate+compile (ours)':<44}{best:>9.3f}{med:>10.3f}")
    print(
        f"{'read+parse only (baseline: libyaml/json)':<44}{min(base):>9.3f}"
        f"{statistics.median(base):>10.3f}"
    )
    print(f"ratio ours/baseline (median): {med / statistics.median(base):.2f}x")
    print(
        f"goal < {GOAL_S:.1f} s: {'met' if med < GOAL_S else 'NOT met'} "
        f"(median {med:.3f} s, {(shape.documents + shape.flows) / med:,.0f} docs+flows/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
