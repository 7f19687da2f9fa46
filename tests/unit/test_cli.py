"""The spec commands as a user runs them: exit codes and exact output."""

from pathlib import Path

import pytest

from sidecar.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "online-boutique" / "specs"
BROKEN = REPO / "tests" / "fixtures" / "broken-specs"

# Every kind of problem validation knows, exactly as `spec validate` prints it.
BROKEN_EXPECTED = """\
adr/002-second.md:5: SUPERSEDES cycle: ADR-001 -> ADR-002 -> ADR-001
adr/003-duplicate.md:1: duplicate id 'ADR-002' (first defined at adr/002-second.md:2)
adr/notes-on-things.md:1: no ADR id in front matter, title or file name
manifests/broken.manifest.yaml:6: invalid YAML: did not find expected ',' or ']' (column 13)
manifests/orders.manifest.yaml:8: operation 'PlaceOrder': budgets error_rate is 1.5 here but 0.01 in sea at sea/orders.sea:10; the spec must say one thing
manifests/orders.manifest.yaml:8: operation 'PlaceOrder': budgets error_rate must be between 0 and 1, got 1.5
manifests/orders.manifest.yaml:8: operation 'PlaceOrder': budgets p95_ms is 250 here but 300 in sea at sea/orders.sea:10; the spec must say one thing
manifests/orders.manifest.yaml:9: operation 'PlaceOrder': calls 'payment:flow:Charj' is not a known spec node (did you mean 'payment:flow:Charge'?)
manifests/orders.manifest.yaml:14: operation 'ListOrders': budgets p95_ms must be > 0 ms, got -5
manifests/orders.manifest.yaml:16: metric 'app.orders.placed': range min (10) is greater than max (1)
manifests/orders.manifest.yaml:18: policy 'no_negative_payment': assert is not a valid expression: 'Attribute' is not allowed in a policy assertion
manifests/orders.manifest.yaml:22: privacy: unknown detector 'ssn' (expected one of email, credit_card, bearer_token, phone)
manifests/orders.manifest.yaml:23: behavior: unknown key 'retention' (expected one of services, operations, events, metrics, ignore, policies, privacy)
prd/010-shop.md:5: PRD-010: satisfies 'ADR-020' is not a known spec node (did you mean 'ADR-002'?)
prd/010-shop.md:12: REQ-101 is declared twice in this file (first at line 11)
sea/orders.sea:10: Flow 'PlaceOrder': @budget error_rate is 0.01 here but 1.5 in manifest at manifests/orders.manifest.yaml:8; the spec must say one thing
sea/orders.sea:10: Flow 'PlaceOrder': @budget p95_ms is 300 here but 250 in manifest at manifests/orders.manifest.yaml:8; the spec must say one thing
sea/orders.sea:14: Flow 'CancelOrder': @budget is not valid JSON: Expecting ',' delimiter (column 17)
sea/orders.sea:17: Flow 'RefundOrder': @sds 'SDS-031' is not a known spec node (did you mean 'SDS-030'?)
sea/orders.sea:18: span_name 'orders.Orders/PlaceOrder' on service 'ordersvc' is bound to 'orders:flow:RefundOrder' here but to 'orders:flow:PlaceOrder' at sea/orders.sea:9; a binding must name one spec node
20 problem(s) in 7 file(s)
"""


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
    import json

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


def test_publish_without_redis_url_is_usage_error(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEHAVIOR_SPEC__REDIS_URL", raising=False)
    assert main(["spec", "publish", str(EXAMPLE)]) == 2
    assert "no Redis URL" in capsys.readouterr().err


def test_publish_refuses_invalid_tree(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "publish", str(BROKEN), "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert "20 problem(s) in 7 file(s)" in capsys.readouterr().err
