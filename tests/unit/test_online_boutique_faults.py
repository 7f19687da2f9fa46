"""The recorded Online Boutique faults (Nezha, MIT): each ranks its injected service first.

A baseline is learned from the fault-free recording with ``replay --learn-baseline``; each
fault recording is replayed against it with one-minute windows stepping every ten seconds
(the recordings last one to three minutes). The baseline replayed against itself raises
nothing. See docs/online-boutique-discrepancies.md.
"""

import json
from pathlib import Path

import pytest

from sidecar.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "online-boutique" / "specs"
# The shared data sits beside the checkout (CI clones next to a copy of shared/).
DATA = REPO.parent / "shared" / "data" / "online-boutique"
WINDOWS = ["--window-s", "60", "--bucket-s", "10"]
FAULTS = {
    "fault-cart-network": "cartservice",
    "fault-currency-cpu": "currencyservice",
    "fault-frontend-cpu": "frontend",
}


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("baseline")
    path = out / "profile.json"
    traces = DATA / "baseline" / "traces.json"
    code = main(["replay", "--specs", str(EXAMPLE), "--input", str(traces),
                 "--output", str(out / "annotated.jsonl"), "--learn-baseline", str(path),
                 *WINDOWS])  # fmt: skip
    assert code == 0 and path.is_file()
    return path


def run(folder: str, profile: Path, tmp_path: Path) -> dict:
    report = tmp_path / f"{folder}.json"
    code = main(["replay", "--specs", str(EXAMPLE), "--input", str(DATA / folder / "traces.json"),
                 "--output", str(tmp_path / "out.jsonl"), "--report", str(report),
                 "--baseline", str(profile), *WINDOWS])  # fmt: skip
    assert code == 0
    return json.loads(report.read_text())


@pytest.mark.parametrize("folder", sorted(FAULTS))
def test_fault_ranks_the_injected_service_first(folder: str, profile: Path,
                                                tmp_path: Path) -> None:  # fmt: skip
    rep = run(folder, profile, tmp_path)
    ranking = [r["service"] for r in rep["rate_drift_by_service"]]
    assert ranking[0] == FAULTS[folder], ranking
    assert rep["rate_drift_by_service"][0]["score"] >= 0.7
    # ... and the injected service's operations carry latency drift on their items
    owned = [n for n in rep["nodes"] if n["spec_node_id"] and (
        set(n["kinds"]) & {"latency_budget", "baseline_shift"})]  # fmt: skip
    assert owned, "no item carries latency drift"


def test_baseline_against_itself_raises_no_rate_drift(profile: Path, tmp_path: Path) -> None:
    rep = run("baseline", profile, tmp_path)
    assert rep["rate_findings"] == []
    assert rep["rate_drift_by_service"] == []
    for node in rep["nodes"]:
        assert not set(node["kinds"]) & {"latency_budget", "error_budget", "baseline_shift"}
