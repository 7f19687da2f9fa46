"""PII detectors: positives, look-alikes that must not match, pool scanning, redaction.

The no-false-positive check uses the Online Boutique log bodies recorded with the Nezha paper
(FSE 2023, IntelligentDDS/Nezha, MIT license; LICENSE.nezha next to the data): trace and span
ids, timestamps, UUIDs, product ids, amounts and JSON. The demo itself logs a customer email
and a (test) card number; those are real detections and the test expects exactly them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.drift import pii
from sidecar.drift.pii import (
    ALL_DETECTORS,
    DETECTOR_NAMES,
    Detector,
    card_network_known,
    detectors_named,
    find_pii,
    fingerprint,
    key_flags,
    luhn_valid,
    redact,
    row_flags,
    scan,
    scan_pool,
)
from sidecar.errors import ConfigError
from sidecar.spec.manifest import DETECTORS

# The shared data sits beside the checkout (CI clones next to a copy of shared/).
DATA = (
    Path(__file__).resolve().parents[4]
    / "shared"
    / "data"
    / "online-boutique"
    / "fault-currency-cpu"
)
KEY = b"k" * 32
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
    "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)

POSITIVES = {
    Detector.EMAIL: [
        "order confirmation sent to someone@example.com",
        "from <john_smith+tag@sub.example.co.uk>",
        '{"email":"a.b-c@ex-ample.io"}',
        "USER@EXAMPLE.ORG",
    ],
    Detector.CREDIT_CARD: [
        "4111111111111111", "card 4111 1111 1111 1111 exp 12/29", "4111-1111-1111-1111",
        "4012888888881881", "4222222222222", "5555555555554444", "card=5105105105105100;",
        "2223003122003222", "378282246310005", "3782 822463 10005", "371449635398431",
        "6011111111111117", "6011000990139424", "3530111333300000", "3566002020360505",
        "30569309025904", "38520000023237", "6200000000000005", "6759649826438453",
        '"credit_card_number":"4432-8015-6152-0454"',
    ],
    Detector.BEARER_TOKEN: [
        "Authorization: Bearer abcDEF123456ghiJKL789",
        "authorization: bearer 2YotnFZFEjr1zCsicMWpAA2YotnFZFEjr1zCsicMWpAA",
        f"Authorization: Bearer {JWT}",
        f"session token {JWT}.",
    ],
    Detector.PHONE: [
        "+1 (415) 555-0100", "+44 20 7946 0958", "+4915112345678", "+33 6 12 34 56 78",
        "call 415-555-0100 now", "(415) 555-0100", "415.555.0100", "020 7946 0958",
        "07700 900123", "06 12 34 56 78", "tel:+14155550100", "phone: +1-800-555-0199.",
    ],
}  # fmt: skip

NEGATIVES = [
    # ids and times
    "TraceID: 04c87ec97bae041b1b15b3c7676a43cc SpanID: 274f6c05ca78812f",
    "1661145522995757204", "1661145522995", "2022-08-22T05:18:42.995757204Z", "05:18:42.995",
    "e43ed5c7-b96d-4dee-8cdf-b1a7953a9eba", "ORD-4111111111111111", "x4111111111111111",
    "4111111111111111abc", "4111111111111111.25", "41111111111111111111111",
    # Luhn-invalid, unknown network, broken groupings
    "4111111111111112", "1234567812345670", "4111 1111-1111 1111", "41111 1111 1111 111",
    # versions, addresses, numbers
    "10.0.0.1", "192.168.100.200", "v1.25.3", "HTTP/1.1 200", "port 8080", "+02:00",
    "2022-08-22", "22/08/2022", "+20220822", "units:849336 nanos:442281569",
    "zip_code:94043", "123 456 7890", "4155550100", "1,234,567", "+1 more",
    "Amount: JPY849336.442281569", "visa ending 0454",
    # not emails, not tokens
    "logo@2x.png", "pkg@1.2.3", "user@localhost", "java.lang.Object@1b6d3586",
    "image@sha256:abc123", "a@b.c", "bearer of bad news", "Bearer authenticationisgood",
    "Bearer short1", "hipstershop.AdService.getAds", "www.example.com",
    "eyJub3QiOiJqd3QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIz",
]  # fmt: skip


@pytest.mark.parametrize(
    ("detector", "text"), [(d, t) for d, texts in POSITIVES.items() for t in texts]
)
def test_positives_are_detected_by_their_detector(detector: Detector, text: str) -> None:
    assert scan(text) & detector
    assert scan(text, detector) == detector
    assert scan(text, ALL_DETECTORS & ~detector) & detector == 0


@pytest.mark.parametrize("text", NEGATIVES)
def test_look_alikes_are_not_detected(text: str) -> None:
    assert scan(text) == 0, find_pii(text)


def test_luhn_edge_cases() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert luhn_valid("0") and luhn_valid("0000000000000")
    assert not luhn_valid("") and not luhn_valid("4111 1111") and not luhn_valid("٤١١١")
    # Luhn-valid but no network owns the prefix: all zeros, a 1-prefixed id, a Visa of 15.
    assert not card_network_known("0000000000000")
    assert not card_network_known("1234567812345670")
    assert luhn_valid("411111111111116") and not card_network_known("411111111111116")
    assert scan("0000000000000") == 0


@given(st.text(alphabet="0123456789", min_size=12, max_size=18))
def test_exactly_one_check_digit_makes_a_number_luhn_valid(body: str) -> None:
    assert sum(luhn_valid(body + d) for d in "0123456789") == 1


def test_detector_names_match_the_manifest_vocabulary() -> None:
    assert set(DETECTOR_NAMES) == set(DETECTORS)
    assert detectors_named(["email", "phone"]) == Detector.EMAIL | Detector.PHONE
    with pytest.raises(ConfigError, match="unknown PII detector 'ssn'"):
        detectors_named(["email", "ssn"])


def test_scan_pool_scans_each_distinct_string_once(monkeypatch: pytest.MonkeyPatch) -> None:
    values = ["", "a@example.com", "plain", "+44 20 7946 0958", "4111111111111111"]
    calls: list[str] = []
    real = pii._scan_bits

    def counting(text: str, mask: int) -> int:
        calls.append(text)
        return real(text, mask)

    monkeypatch.setattr(pii, "_scan_bits", counting)
    flags = scan_pool(values)
    assert flags.tolist() == [0, 1, 0, 8, 2] and calls == values[1:]
    assert scan_pool(values, Detector.PHONE).tolist() == [0, 0, 0, 8, 0]


def test_row_flags_combine_values_configured_keys_and_bodies() -> None:
    pool = ["", "user.email", "x@example.com", "http.method", "GET", "customer.phone", "n/a"]
    values = scan_pool(pool)
    keys = key_flags(pool, ["customer.phone"])
    assert keys.tolist() == [0, 0, 0, 0, 0, 16, 0]
    # row 0: user.email=x@..; row 1: none; row 2: http.method=GET, customer.phone=n/a;
    # row 3: customer.phone="" (absent value); row 4: a log whose body is an email
    offsets = np.array([0, 1, 1, 3, 4, 4], np.int64)
    attr_keys = np.array([1, 3, 5, 5], np.int32)
    attr_values = np.array([2, 4, 6, 0], np.int32)
    body = np.array([0, 0, 0, 0, 2], np.int32)
    flags = row_flags(offsets, attr_keys, attr_values, values, keys, body=body)
    assert flags.tolist() == [1, 0, 16, 0, 1]
    empty = row_flags(np.zeros(3, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int32),
                      values, keys)  # fmt: skip
    assert empty.tolist() == [0, 0]


def test_redact_replaces_values_and_can_fingerprint_them() -> None:
    text = f"mail jane@example.com, card 4111 1111 1111 1111, Authorization: Bearer {JWT}"
    out = redact(text)
    assert out == ("mail [REDACTED:email], card [REDACTED:credit_card], "
                   "Authorization: Bearer [REDACTED:bearer_token]")  # fmt: skip
    keyed = redact("a jane@example.com b jane@example.com", key=KEY)
    label = keyed.split()[1]
    assert label.startswith("[REDACTED:email#") and keyed.split()[3] == label
    assert "jane" not in keyed
    assert redact("nothing here") == "nothing here"


def test_fingerprint_is_keyed_deterministic_and_opaque() -> None:
    a = fingerprint("jane@example.com", KEY)
    assert a == fingerprint("jane@example.com", KEY)
    assert a != fingerprint("jane@example.com", b"x" * 32)
    assert a != fingerprint("jane@example.org", KEY)
    assert a.startswith("pii:") and len(a) == 36 and "jane" not in a
    with pytest.raises(ConfigError, match="16 to 64 bytes"):
        fingerprint("x", b"short")


def test_online_boutique_logs_raise_only_the_email_and_card_they_contain() -> None:
    bodies: set[str] = set()
    with (DATA / "logs.json").open() as f:
        for line in f:
            for rl in json.loads(line)["resourceLogs"]:
                for sl in rl["scopeLogs"]:
                    bodies.update(r["body"]["stringValue"] for r in sl["logRecords"])
    strings: set[str] = set()
    with (DATA / "traces.json").open() as f:
        for line in f:
            for rs in json.loads(line)["resourceSpans"]:
                strings.update(a["value"]["stringValue"] for a in rs["resource"]["attributes"])
                for ss in rs["scopeSpans"]:
                    strings.update(s["name"] for s in ss["spans"])
    pool = sorted(bodies) + sorted(strings)
    flags = scan_pool(pool)
    expected = [
        (Detector.EMAIL if "someone@example.com" in v else 0)
        | (Detector.CREDIT_CARD if "4432-8015-6152-0454" in v else 0)
        for v in pool
    ]
    assert flags.tolist() == [int(e) for e in expected]
    assert len(bodies) > 12_000
    assert (int((flags == Detector.EMAIL).sum()), int((flags == Detector.CREDIT_CARD).sum())) == (
        32,
        8,
    )
    for v in pool:
        if "someone@example.com" in v or "4432" in v:
            out = redact(v)
            assert "someone@example.com" not in out and "4432-8015-6152-0454" not in out
            assert out.split(" SpanID")[0] == v.split(" SpanID")[0]  # trace ids are kept


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_scanning_never_raises_and_redaction_leaves_nothing_detectable(text: str) -> None:
    scan(text)
    fingerprint(text, KEY)
    assert scan(redact(text)) == 0
    assert scan(redact(text, key=KEY)) == 0


FILLER = st.text(alphabet=st.sampled_from("abcXYZ ,;!?_\n\t"), max_size=20)
VALUES = st.sampled_from([t for texts in POSITIVES.values() for t in texts])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(FILLER, VALUES), min_size=1, max_size=5), FILLER)
def test_redaction_removes_every_embedded_value(parts: list[tuple[str, str]], tail: str) -> None:
    text = "".join(f"{filler} {value} " for filler, value in parts) + tail
    found = find_pii(text)
    out = redact(text)
    assert scan(out) == 0
    for m in found:
        assert text[m.start : m.end] not in out
