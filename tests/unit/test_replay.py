"""Offline replay end to end on the recorded Online Boutique data (Nezha, MIT) and bad input."""

import json
from pathlib import Path

import pytest

from sidecar.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "online-boutique" / "specs"
# The shared data sits beside the checkout (CI clones next to a copy of shared/).
DATA = REPO.parent / "shared" / "data" / "online-boutique"
CONTRACT = {"behavior.spec_node_id", "behavior.context", "behavior.match_type",
            "behavior.confidence", "behavior.correlation_status", "behavior.drift_score",
            "behavior.drift_level", "behavior.drift_class", "behavior.drift_kinds",
            "behavior.rule_ids", "behavior.evidence_id", "behavior.spec_version"}  # fmt: skip


def items(doc: dict) -> list[tuple[str, dict]]:
    out = []
    for key, scopes, leaf in (("resourceSpans", "scopeSpans", "spans"),
                              ("resourceLogs", "scopeLogs", "logRecords")):  # fmt: skip
        for res in doc.get(key, []):
            for scope in res[scopes]:
                out += [(leaf, item) for item in scope[leaf]]
    for res in doc.get("resourceMetrics", []):
        for scope in res["scopeMetrics"]:
            for metric in scope["metrics"]:
                body = next(v for k, v in metric.items() if isinstance(v, dict))
                out += [("points", p) for p in body["dataPoints"]]
    return out


def attrs(item: dict) -> dict[str, object]:
    return {a["key"]: next(iter(a["value"].values())) for a in item.get("attributes", [])}


def test_replay_annotates_every_item_and_joins_logs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = DATA / "fault-currency-cpu"
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    code = main(["replay", "--specs", str(EXAMPLE), "--input", str(folder / "logs.json"),
                 "--input", str(folder / "traces.json"), "--input", str(folder / "metrics.json"),
                 "--output", str(out), "--report", str(report)])  # fmt: skip
    assert code == 0
    docs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [next(iter(d)) for d in docs] == ["resourceSpans", "resourceLogs", "resourceMetrics"]
    all_items = [x for d in docs for x in items(d)]
    assert all(set(attrs(item)) >= CONTRACT for _, item in all_items)
    span_node = {(item["traceId"], item["spanId"]): attrs(item)["behavior.spec_node_id"]
                 for leaf, item in all_items if leaf == "spans"}  # fmt: skip
    logs = [item for leaf, item in all_items if leaf == "logRecords"]
    joinable = [lg for lg in logs if span_node.get((lg["traceId"], lg["spanId"]))]
    assert len(joinable) > len(logs) / 2
    for log in joinable:  # a log whose span was correlated takes that span's node
        a = attrs(log)
        assert a["behavior.spec_node_id"] == span_node[(log["traceId"], log["spanId"])]
        assert "join.span" in str(a["behavior.rule_ids"])
    rep = json.loads(report.read_text())
    assert rep["items"] == len(all_items) and rep["errors"] == []
    assert {s["service"] for s in rep["services"]} >= {"currencyservice", "frontend"}
    printed = capsys.readouterr().out
    assert "service" in printed and f"to {out}" in printed


def test_malformed_input_is_reported_and_the_rest_still_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = (DATA / "baseline" / "traces.json").read_text().strip()
    bad = tmp_path / "bad.json"
    bad.write_text(good + "\n" + good[:500] + "\n" + good + "\n")
    out, report = tmp_path / "out.jsonl", tmp_path / "report.json"
    code = main(["replay", "--specs", str(EXAMPLE), "--input", str(bad),
                 "--input", str(DATA / "baseline" / "metrics.json"),
                 "--output", str(out), "--report", str(report)])  # fmt: skip
    assert code == 1
    lines = out.read_text().splitlines()
    assert len(lines) == 3  # two good trace documents and the metrics document
    errors = json.loads(report.read_text())["errors"]
    assert len(errors) == 1
    assert errors[0].startswith(f"{bad}: line 2: invalid JSON: ")
    assert "1 input error(s):" in capsys.readouterr().out


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["replay", "--specs", str(EXAMPLE), "--input", str(tmp_path / "nope.json"),
                 "--output", str(tmp_path / "o.jsonl")])  # fmt: skip
    assert code == 1
    assert f"{tmp_path / 'nope.json'}: cannot read" in capsys.readouterr().out
