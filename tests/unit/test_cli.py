"""The spec commands as a user runs them: exit codes and exact output."""

import json
from pathlib import Path

import pytest

from sidecar.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "online-boutique" / "specs"
BROKEN = REPO / "tests" / "fixtures" / "broken-specs"

# Every kind of problem validation knows, exactly as `spec validate` prints it.
BROKEN_EXPECTED = (REPO / "tests" / "fixtures" / "broken-specs.expected").read_text()


def test_validate_example_prints_counts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{EXAMPLE}: valid, spec version ")
    assert out[1] == "files: 32 read, 0 ignored, 3 note(s)"
    assert out[2].startswith("nodes: 120 (adr 7, prd 1, req 12, sds 9, context 9, service 10, ")
    assert out[3].startswith("edges: ")
    assert out[4].startswith("index: nodes 120, operations 23, ")


def test_validate_every_kind_of_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", str(BROKEN)]) == 2
    assert capsys.readouterr().out == BROKEN_EXPECTED


def test_validate_verbose_lists_notes_and_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", "--verbose", str(BROKEN)]) == 2
    out = capsys.readouterr().out
    assert "sea/orders.sea:20: skipped unknown SEA declaration 'Dimension' [note]" in out


def test_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", "--json", str(BROKEN)]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert len(doc["problems"]) == 20


def test_validate_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_show_node_with_chain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "show", str(EXAMPLE), "checkout:flow:PlaceOrder"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("checkout:flow:PlaceOrder  [flow]  PlaceOrder")
    chain = out.split("chain:\n", 1)[1]
    # node -> SDS -> PRD -> ADR, in that order down the tree
    assert chain.index("SPECIFIED_BY→ SDS-021") < chain.index("SATISFIES→ PRD-010")
    assert chain.index("SATISFIES→ PRD-010") < chain.rindex("SATISFIES→ ADR-004")


def test_show_unknown_node_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "show", str(EXAMPLE), "checkout:flow:PlaceOrdr"]) == 2
    assert "did you mean 'checkout:flow:PlaceOrder'?" in capsys.readouterr().err


def test_show_overview_lists_contexts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "show", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "context checkout:" in out
    assert "checkout:flow:PlaceOrder  <- span 'hipstershop.CheckoutService/PlaceOrder'" in out


def test_publish_without_redis_url_is_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BEHAVIOR_SPEC__REDIS_URL", raising=False)
    assert main(["spec", "publish", str(EXAMPLE)]) == 2
    assert "no Redis URL" in capsys.readouterr().err


def test_publish_refuses_invalid_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "publish", str(BROKEN), "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert "20 problem(s) in 7 file(s)" in capsys.readouterr().err
