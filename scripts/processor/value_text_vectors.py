"""Write proto/testdata/value_text.json: attribute and body texts of OTLP AnyValues.

    .venv/bin/python scripts/processor/value_text_vectors.py [OUT]

The processor (Go) projects attribute values and log bodies as text, and the sidecar's OTLP
decoders turn the same values into text; both must agree character for character (see
proto/behavior/v1/correlation.proto, message Attributes). The expected texts here come from
the sidecar's own rules (``sidecar.decode.values.plain_text`` and ``body_text`` over the
value that ``sidecar.decode.json_fields.any_value`` reads), so this file is regenerated,
never edited by hand. The Go tests and the Python tests both check it.

Each case: ``value`` is an OTLP JSON AnyValue (protojson: intValue as a string, NaN and
infinities as "NaN"/"Infinity"/"-Infinity", bytes as base64), ``value_type`` the protocol's
ValueType number, ``text`` the attribute text and ``body`` the log body text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sidecar.decode.json_fields import any_value
from sidecar.decode.values import body_text, plain_text

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "proto" / "testdata" / "value_text.json"

VALUE_TYPES = {None: 0, "stringValue": 1, "boolValue": 2, "intValue": 3, "doubleValue": 4,
               "bytesValue": 5, "arrayValue": 6, "kvlistValue": 7}  # fmt: skip


def s(v: str) -> dict[str, Any]:
    return {"stringValue": v}


def i(v: int) -> dict[str, Any]:
    return {"intValue": str(v)}


def d(v: float | str) -> dict[str, Any]:
    return {"doubleValue": v}


def b(v: str) -> dict[str, Any]:
    return {"bytesValue": v}


def arr(*values: dict[str, Any]) -> dict[str, Any]:
    return {"arrayValue": {"values": list(values)}}


def kv(*pairs: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in pairs]}}


CASES: list[tuple[str, dict[str, Any]]] = [
    ("empty", {}),
    ("string", s("GET /cart")),
    ("string empty", s("")),
    ("string unicode", s("ünïcødé ✓ 日本")),
    ("string with escapes", s('a"b\\c\nd\te\u0001\u007f\u2028')),
    ("bool true", {"boolValue": True}),
    ("bool false", {"boolValue": False}),
    ("int zero", i(0)),
    ("int negative", i(-17)),
    ("int max", i(2**63 - 1)),
    ("int min", i(-(2**63))),
    ("double zero", d(0.0)),
    ("double negative zero", d(-0.0)),
    ("double integral", d(3.0)),
    ("double negative integral", d(-250.0)),
    ("double quarter", d(0.25)),
    ("double tenth", d(0.1)),
    ("double third", d(1 / 3)),
    ("double sum of tenths", d(0.1 + 0.2)),
    ("double 1e-4 positional", d(0.0001)),
    ("double 1e-5 exponent", d(1e-05)),
    ("double 1.5e-7", d(1.5e-07)),
    ("double 123.456", d(123.456)),
    ("double -0.5", d(-0.5)),
    ("double 100.5", d(100.5)),
    ("double 2^53-1", d(float(2**53 - 1))),
    ("double 2^53", d(float(2**53))),
    ("double 2^53+2", d(float(2**53 + 2))),
    ("double 9999999999999998", d(9999999999999998.0)),
    ("double 1e15+0.5", d(1e15 + 0.5)),
    ("double 1e16", d(1e16)),
    ("double 1.5e16", d(1.5e16)),
    ("double 12345678901234567", d(12345678901234567.0)),
    ("double 1e17", d(1e17)),
    ("double 1e21", d(1e21)),
    ("double 1e22", d(1e22)),
    ("double 1e300", d(1e300)),
    ("double max", d(1.7976931348623157e308)),
    ("double min normal", d(2.2250738585072014e-308)),
    ("double min subnormal", d(5e-324)),
    ("double 123456789.123", d(123456789.123)),
    ("double nan", d("NaN")),
    ("double inf", d("Infinity")),
    ("double -inf", d("-Infinity")),
    ("bytes empty", b("")),
    ("bytes", b("AQID")),
    ("bytes padded", b("/+8=")),
    ("array empty", arr()),
    ("array strings", arr(s("a"), s("b,c"))),
    ("array mixed", arr(i(1), d(2.5), d(1.0), {"boolValue": True}, {}, s(""))),
    ("array nested", arr(arr(i(1), i(2)), arr(i(3)))),
    ("array bytes", arr(b("AQID"), b(""))),
    ("array with kvlist", arr(kv(("k", s("v"))), s("x"))),
    ("array doubles", arr(d(1e16), d(1e-05), d("NaN"), d("-Infinity"))),
    ("kvlist empty", kv()),
    ("kvlist flat", kv(("a", i(1)), ("b", s("x")), ("c", {"boolValue": False}))),
    ("kvlist double integral", kv(("n", d(1.0)), ("m", d(-0.0)))),
    ("kvlist double forms", kv(("e", d(1e-05)), ("big", d(1e16)), ("p", d(0.1)))),
    ("kvlist non-finite", kv(("nan", d("NaN")), ("inf", d("Infinity")), ("ninf", d("-Infinity")))),
    ("kvlist nested", kv(("m", kv(("k", arr(i(1), s("x"), {})))), ("z", {}))),
    ("kvlist bytes", kv(("raw", b("AQID")))),
    (
        "kvlist escapes",
        kv(('q"k', s('quote" back\\ nl\n cr\r tab\t bs\b ff\f \u0000 \u001f \u007f \u2028'))),
    ),
    ("kvlist unicode", kv(("ключ", s("значение ✓")))),
    ("kvlist repeated key", kv(("a", i(1)), ("b", i(2)), ("a", i(3)))),
    ("kvlist in order given", kv(("z", i(1)), ("a", i(2)))),
]


def vectors() -> dict[str, Any]:
    """The vector document."""
    cases = []
    for name, value in CASES:
        plain = any_value(value)
        which = next(iter(value), None)
        cases.append({
            "name": name,
            "value": value,
            "value_type": VALUE_TYPES[which],
            "text": plain if isinstance(plain, str) else plain_text(plain),
            "body": body_text(plain),
        })  # fmt: skip
    return {
        "about": "Attribute and log-body texts of OTLP AnyValues (sidecar/decode/values.py). "
        "Generated by scripts/processor/value_text_vectors.py; do not edit.",
        "cases": cases,
    }


def main() -> None:
    """Write the vectors to OUT (default proto/testdata/value_text.json)."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else OUT
    text = json.dumps(vectors(), indent=2, ensure_ascii=False)
    out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
