"""The committed protocol stubs are what scripts/proto/generate.sh makes of the proto today.

Python (sidecar/protocol) and Go (processor/.../internal/behaviorpb) alike, byte for byte.
Needs Go (the Go plugins are installed into .tools/bin on first use, from the module proxy),
so it is marked integration; without Go it skips, except under CI where it fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATED = {
    "sidecar/protocol": ("correlation_pb2.py", "correlation_pb2.pyi", "correlation_pb2_grpc.py"),
    "processor/behaviorcorrelationprocessor/internal/behaviorpb": (
        "correlation.pb.go",
        "correlation_grpc.pb.go",
    ),
}


@pytest.mark.integration
def test_generated_stubs_match_the_committed_ones(tmp_path: Path) -> None:
    if shutil.which("go") is None:
        if os.environ.get("CI"):
            pytest.fail("go is not on PATH; the Go stubs cannot be regenerated")
        pytest.skip("go is not on PATH")
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "proto" / "generate.sh"), str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    made = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    expected = sorted(f"{d}/{name}" for d, names in GENERATED.items() for name in names)
    assert made == expected, "the generator makes other files than the committed stubs"
    stale = [rel for rel in expected if (tmp_path / rel).read_bytes() != (ROOT / rel).read_bytes()]
    assert not stale, f"stale stubs (run scripts/proto/generate.sh): {stale}"
