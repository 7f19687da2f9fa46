"""The processor's Go tests that need a real sidecar (``TestRealSidecar*``), run against one.

Without ``BEHAVIOR_SIDECAR_ENDPOINT`` those Go tests skip; here the real ``python -m sidecar
serve`` is started and the variable set, and the run must report them as passed (not
skipped): the output of ``go test -v`` is checked for each test name.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "collector"))

import otelcol_harness as h

PROCESSOR = h.REPO_ROOT / "processor" / "behaviorcorrelationprocessor"


def test_go_real_sidecar_tests_pass_against_the_python_sidecar(tmp_path: Path) -> None:
    port = h.free_port()
    sidecar = h.start_sidecar(port, tmp_path / "sidecar.log")
    try:
        done = subprocess.run(
            ["go", "test", "-count=1", "-v", "-run", "^TestRealSidecar", "./"],
            cwd=PROCESSOR,
            env={**os.environ, "BEHAVIOR_SIDECAR_ENDPOINT": f"127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        sidecar.stop()
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    passed = set(re.findall(r"^--- PASS: (TestRealSidecar\w*)", out, re.MULTILINE))
    declared = set(re.findall(r"^func (TestRealSidecar\w*)\(", _sources(), re.MULTILINE))
    assert declared and passed == declared, out
    assert "--- SKIP" not in out, out


def _sources() -> str:
    return "".join(p.read_text() for p in PROCESSOR.glob("*_test.go"))
