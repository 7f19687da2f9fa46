"""The policy expression language: what it accepts, what it refuses, how it evaluates."""

import pytest

from sidecar.spec.expr import ExpressionError, compile_assertion


def test_attribute_comparison_and_keys() -> None:
    a = compile_assertion("attributes['app.payment.amount'] >= 0")
    assert a.attribute_keys == ("app.payment.amount",)
    assert a.evaluate({"app.payment.amount": 12.5}) is True
    assert a.evaluate({"app.payment.amount": -1}) is False


def test_missing_attribute_means_not_applicable() -> None:
    a = compile_assertion("attributes['x'] == 1 and duration_ms < 300")
    assert a.evaluate({}) is None
    assert a.evaluate({"x": 1}) is None  # duration_ms not supplied
    assert a.evaluate({"x": 1}, duration_ms=10.0) is True


def test_membership_arithmetic_and_chains() -> None:
    a = compile_assertion("attributes['cur'] in ['USD', 'EUR'] and 0 < attributes['n'] * 2 <= 10")
    assert a.evaluate({"cur": "USD", "n": 5}) is True
    assert a.evaluate({"cur": "JPY", "n": 5}) is False
    assert a.evaluate({"cur": "USD", "n": 6}) is False


def test_type_mismatch_is_not_applicable() -> None:
    assert compile_assertion("attributes['n'] > 3").evaluate({"n": "abc"}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "'Call' is not allowed"),
        ("attributes.x > 1", "'Attribute' is not allowed"),
        ("[x for x in y]", "'ListComp' is not allowed"),
        ("attributes", "must be used as attributes['key']"),
        ("attributes[1] > 0", "takes a quoted attribute key"),
        ("foo > 1", "unknown name 'foo'"),
        ("1 +", "invalid syntax"),
        ("lambda: 1", "'Lambda' is not allowed"),
    ],
)
def test_refused(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("[", r"\[").replace("(", r"\(")):
        compile_assertion(text)
