"""Rate checks: significance of budget breaches, episode localisation, retried calls."""

from pathlib import Path

import numpy as np
import pytest

from sidecar.drift.baseline import BaselineLearner
from sidecar.drift.episodes import episode
from sidecar.drift.rates import RateSettings, RateTracker
from sidecar.drift.span_checks import CheckContext
from sidecar.drift.trace_checks import retried_calls
from sidecar.engine import Engine
from sidecar.evidence.annotations import DRIFT_KINDS
from sidecar.evidence.batch import BatchBuilder, EvidenceBatch, Signal, SpanKind, Status
from sidecar.spec_index.index import RuntimeIndex
from sidecar.spec_index.startup import index_from_disk

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "online-boutique" / "specs"
GET_ADS = "hipstershop.AdService/GetAds"  # budgets: p95 100 ms, errors 5 %
GET_CART = "hipstershop.CartService/GetCart"  # budgets: p95 30 ms, errors 0.5 %
S = 1_000_000_000
T0 = 1_750_000_000 * S


@pytest.fixture(scope="module")
def index() -> RuntimeIndex:
    return index_from_disk(EXAMPLE)


def spans(index: RuntimeIndex, name: str, service: str, errors: list[bool],
          every_s: float = 3.0) -> EvidenceBatch:  # fmt: skip
    """One server span per entry, ``every_s`` apart, each in its own trace, 5 ms long."""
    b = BatchBuilder(index.attribute_keys)
    for i, failed in enumerate(errors):
        start = T0 + int(i * every_s * S)
        b.add({"signal": Signal.SPAN, "trace_hi": 1, "trace_lo": i + 1, "span_id": 1,
               "start_ns": start, "end_ns": start + 5_000_000, "kind": SpanKind.SERVER,
               "service": b.pool.code(service), "name": b.pool.code(name),
               "status": Status.ERROR if failed else Status.UNSET}, {})  # fmt: skip
    return b.build()


def kinds(engine: Engine, batch: EvidenceBatch) -> list[list[str]]:
    ann = engine.process(batch).annotations
    return [ann.attributes(i)[DRIFT_KINDS] for i in range(len(batch))]


def test_episode_starts_and_ends_on_offending_rows() -> None:
    x = np.array([0] * 20 + [0, 1, 0, 1, 1, 0, 0, 1, 0, 1] + [0] * 20, np.bool_)
    assert episode(x, 0.05) == (21, 29)
    # a quiet stretch inside an episode belongs to it while the offenders around outweigh it
    inner = np.array([1, 1, 1, 0, 0, 0, 1, 1, 1], np.bool_)
    assert episode(inner, 0.05) == (0, 8)
    assert episode(np.zeros(30, np.bool_), 0.05) is None
    assert episode(np.array([1] + [0] * 99, np.bool_), 0.05) is None  # 1 % is within 5 %


def test_an_isolated_offender_far_from_the_episode_is_left_out() -> None:
    x = np.array([1] + [0] * 60 + [1, 1, 0, 1, 1, 1, 0, 1] + [0] * 10, np.bool_)
    assert episode(x, 0.05) == (61, 68)


def test_one_error_in_a_small_window_is_no_breach(index: RuntimeIndex) -> None:
    """1 error in 40 calls is 2.5 %, over GetCart's 0.5 % budget, and no evidence at all."""
    errors = [False] * 40
    errors[17] = True
    engine = Engine(index, rates=RateTracker(RateSettings()))
    assert all("error_budget" not in k for k in kinds(engine, spans(index, GET_CART, "cartservice",
                                                                      errors)))  # fmt: skip
    assert engine.rates.findings == []


def test_error_budget_marks_the_episode_not_the_whole_window(index: RuntimeIndex) -> None:
    """Ten clean minutes, four minutes failing 40 % of the time, ten clean minutes again."""
    rng = np.random.default_rng(3)
    quiet = [False] * 200
    bad = (rng.random(80) < 0.4).tolist()
    errors = quiet + bad + quiet
    found = kinds(Engine(index), spans(index, GET_ADS, "adservice", errors))
    marked = [i for i, k in enumerate(found) if "error_budget" in k]
    first, last = 200 + bad.index(True), 279 - bad[::-1].index(True)
    assert marked == list(range(first, last + 1))


def test_latency_budget_episode_is_exact_at_both_ends(index: RuntimeIndex) -> None:
    b = BatchBuilder(index.attribute_keys)
    for i in range(300):
        start = T0 + i * 3 * S
        ms = 300 if 100 <= i < 160 else 20  # p95 budget 100 ms
        b.add({"signal": Signal.SPAN, "trace_hi": 1, "trace_lo": i + 1, "span_id": 1,
               "start_ns": start, "end_ns": start + ms * 1_000_000, "kind": SpanKind.SERVER,
               "service": b.pool.code("adservice"), "name": b.pool.code(GET_ADS)}, {})  # fmt: skip
    found = kinds(Engine(index), b.build())
    assert [i for i, k in enumerate(found) if "latency_budget" in k] == list(range(100, 160))


def retry_trace(index: RuntimeIndex, failed_attempts: int) -> EvidenceBatch:
    """frontend's GetAds server span calls GetCart: failed attempts, then one that succeeds."""
    b = BatchBuilder(index.attribute_keys)
    code = b.pool.code
    row = {"signal": Signal.SPAN, "trace_hi": 1, "trace_lo": 9}

    def add(sid: int, parent: int, kind: SpanKind, service: str, name: str, at: int,
            status: Status = Status.UNSET) -> None:  # fmt: skip
        b.add({**row, "span_id": sid, "parent_id": parent, "start_ns": T0 + at * 1000,
               "end_ns": T0 + at * 1000 + 500, "kind": kind, "service": code(service),
               "name": code(name), "status": status}, {"app.ads.count": 1})  # fmt: skip

    add(1, 0, SpanKind.SERVER, "adservice", GET_ADS, 0)
    for k in range(failed_attempts):
        add(2 + k, 1, SpanKind.CLIENT, "adservice", GET_CART, 1 + k, Status.ERROR)
    add(2 + failed_attempts, 1, SpanKind.CLIENT, "adservice", GET_CART, 1 + failed_attempts)
    add(3 + failed_attempts, 2 + failed_attempts, SpanKind.SERVER, "cartservice", GET_CART,
        2 + failed_attempts)  # fmt: skip
    return b.build()


def test_retries_within_the_limit_are_benign_and_no_sample(index: RuntimeIndex) -> None:
    engine = Engine(index)
    batch = retry_trace(index, 2)
    ctx = CheckContext(batch, engine.correlator.correlate(batch), engine.correlator)
    retried, storm = retried_calls(ctx)
    assert retried.tolist() == [False, True, True, False, False]
    assert not storm[1].any()
    assert all("unexpected_call" not in k for k in kinds(engine, batch))


def test_retries_over_the_limit_are_an_unexpected_call_of_the_caller(index: RuntimeIndex) -> None:
    engine = Engine(index)
    batch = retry_trace(index, 3)
    ctx = CheckContext(batch, engine.correlator.correlate(batch), engine.correlator)
    retried, storm = retried_calls(ctx)
    assert not retried.any() and storm[1].tolist() == [True] + [False] * 5
    assert "unexpected_call" in kinds(engine, batch)[0]


def test_retried_attempts_are_no_sample_of_the_call_series(index: RuntimeIndex) -> None:
    rates = RateTracker(learner=BaselineLearner())
    Engine(index, rates=rates).process(retry_trace(index, 2))
    assert rates.learner is not None
    call = rates.learner.profile(rates.series_ids).nodes["cart:flow:GetCart|adservice|call"]
    assert (call.samples, call.errors) == (1, 0)


def test_an_all_offending_run_is_one_episode() -> None:
    assert episode(np.ones(40, np.bool_), 0.05) == (0, 39)
    assert episode(np.array([1] * 20 + [0] + [1] * 20, np.bool_), 0.05) == (0, 40)
