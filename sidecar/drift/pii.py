"""PII detectors over strings: email, card numbers, bearer tokens, phone numbers, PII keys.

Built for dictionary-encoded batches: :func:`scan_pool` scans each distinct string once and
returns a bitmask per pool code, so a value repeated on a million rows costs one scan; row
masks are gathers (:func:`row_flags`). Raw PII never needs to leave the process: :func:`redact`
replaces what is found (optionally with a keyed fingerprint) and :func:`fingerprint` is a keyed
BLAKE2b hash, so equal values can be joined without being stored.

Precision over recall, on purpose (a false ``pii_exposure`` alert on a trace id teaches people
to ignore the kind):

- ``email``: ``local@domain.tld`` with an alphabetic TLD; asset names such as ``logo@2x.png``
  (TLD a file extension) are not emails; ``git@github.com``-style addresses are.
- ``credit_card``: 13-19 digits, contiguous or in the printed groupings (4-4-4-4[-3], 4-6-5,
  4-6-4) with one separator kind, a known network prefix for that length (Visa, Mastercard,
  Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir, RuPay, Troy) and a valid Luhn check.
  Digits glued to letters (hex ids) or decimals are not candidates.
- ``bearer_token``: ``Bearer <token>`` with a token of 16+ characters that is not a plain word,
  and JWTs (``eyJ...`` header that decodes to a JSON object with ``alg``, three segments).
- ``phone``: ``+`` and 8-15 digits in at most 7 groups (E.164 and its printed forms), the NANP
  forms ``(415) 555-0100`` / ``415-555-0100`` with valid area and exchange codes, trunk-0
  national forms with separators (``020 7946 0958``, ``06 12 34 56 78``) and ``tel:`` URIs
  (7-15 digits).
  Bare digit runs are never phones: they are ids far more often.
- configured keys: attribute keys a context lists as PII; any non-empty value counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntFlag

import numpy as np
import numpy.typing as npt

from sidecar.errors import ConfigError

U8 = npt.NDArray[np.uint8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


class Detector(IntFlag):
    """One bit per detector (the bitmask :func:`scan_pool` returns)."""

    EMAIL = 1
    CREDIT_CARD = 2
    BEARER_TOKEN = 4
    PHONE = 8
    CONFIGURED_KEY = 16


#: The value detectors by the names manifests use (``privacy.detectors``).
DETECTOR_NAMES: dict[str, Detector] = {
    "email": Detector.EMAIL,
    "credit_card": Detector.CREDIT_CARD,
    "bearer_token": Detector.BEARER_TOKEN,
    "phone": Detector.PHONE,
}
ALL_DETECTORS = Detector.EMAIL | Detector.CREDIT_CARD | Detector.BEARER_TOKEN | Detector.PHONE
_NAME_OF = {bit: name for name, bit in DETECTOR_NAMES.items()}
_MAX_REDACT_PASSES = 4


def detectors_named(names: Iterable[str]) -> Detector:
    """The bitmask of detectors named in a manifest; unknown names are a config error."""
    mask = Detector(0)
    for name in names:
        if name not in DETECTOR_NAMES:
            raise ConfigError(f"unknown PII detector '{name}' (known: {', '.join(DETECTOR_NAMES)})")
        mask |= DETECTOR_NAMES[name]
    return mask


@dataclass(frozen=True, slots=True)
class Match:
    """Where a detector matched in a string."""

    start: int
    end: int
    detector: Detector


# --- email -------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w%+.\-])[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,63})(?![\w\-]|\.\w)",
    re.ASCII,
)
#: File extensions that are not top-level domains (``icon@2x.png`` is an asset, not a person).
_NOT_TLDS = frozenset((
    "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "tif", "tiff", "css", "js", "mjs",
    "json", "html", "htm", "txt", "xml", "yaml", "yml", "map", "woff", "woff2", "ttf", "otf",
    "eot", "pdf", "csv", "log", "ts", "tsx", "jsx", "java", "class", "jar",
))  # fmt: skip


def _emails(text: str, runs: Sequence[tuple[int, int]]) -> Iterable[Match]:
    del runs
    for m in _EMAIL.finditer(text):
        if m.group(1).lower() not in _NOT_TLDS:
            yield Match(m.start(), m.end(), Detector.EMAIL)


# --- credit cards ------------------------------------------------------------------------
_CARD = re.compile(
    r"(?<![\w.+\-/])(?<!\d,)(?:\d{13,19}"
    r"|\d{4}([ \-])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"
    r"|\d{4}([ \-])\d{6}\2\d{4,5})(?![\w/]|[.,:\-]\d)",
    re.ASCII,
)
#: (lowest prefix, highest prefix, allowed lengths) of the card networks.
_NETWORKS: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, frozenset(range(16, 20))),  # Discover
    (644, 649, frozenset(range(16, 20))),
    (65, 65, frozenset(range(16, 20))),
    (3528, 3589, frozenset(range(16, 20))),  # JCB
    (300, 305, frozenset(range(14, 20))),  # Diners Club
    (36, 36, frozenset(range(14, 20))),
    (38, 39, frozenset(range(14, 20))),
    (62, 62, frozenset(range(16, 20))),  # UnionPay
    (2200, 2204, frozenset(range(16, 20))),  # Mir
    (60, 60, frozenset({16})),  # RuPay
    (508, 508, frozenset({16})),
    (9792, 9792, frozenset({16})),  # Troy
    (5018, 5018, frozenset(range(13, 20))),  # Maestro
    (5020, 5020, frozenset(range(13, 20))),
    (5038, 5038, frozenset(range(13, 20))),
    (5893, 5893, frozenset(range(13, 20))),
    (6304, 6304, frozenset(range(13, 20))),
    (6759, 6759, frozenset(range(13, 20))),
    (6761, 6763, frozenset(range(13, 20))),
)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a digit string."""
    if not digits.isdigit() or not digits.isascii():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_network_known(digits: str) -> bool:
    """Whether a card number's prefix and length belong to a known network."""
    for lo, hi, lengths in _NETWORKS:
        width = len(str(lo))
        if len(digits) in lengths and lo <= int(digits[:width]) <= hi:
            return True
    return False


def _cards(text: str, runs: Sequence[tuple[int, int]]) -> Iterable[Match]:
    for m in _finditer(_CARD, text, runs):
        digits = m.group().replace(" ", "").replace("-", "")
        if 13 <= len(digits) <= 19 and card_network_known(digits) and luhn_valid(digits):
            yield Match(m.start(), m.end(), Detector.CREDIT_CARD)


# --- bearer tokens and JWTs ----------------------------------------------------------------
_BEARER = re.compile(
    r"(?<![\w\-])(?i:bearer)\s+([A-Za-z0-9\-._~+/]{16,}=*)(?![\w\-~+/=]|\.[\w\-])", re.ASCII
)
_JWT = re.compile(
    r"(?<![\w\-.])(eyJ[A-Za-z0-9_\-]{7,})\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*(?![\w\-]|\.[\w\-])",
    re.ASCII,
)


def _jwt_header(segment: str) -> bool:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header


def _tokens(text: str, runs: Sequence[tuple[int, int]]) -> Iterable[Match]:
    del runs
    for m in _BEARER.finditer(text):
        token = m.group(1)
        if not token.isalpha():
            yield Match(m.start(1), m.end(1), Detector.BEARER_TOKEN)
    for m in _JWT.finditer(text):
        if _jwt_header(m.group(1)):
            yield Match(m.start(), m.end(), Detector.BEARER_TOKEN)


# --- phone numbers -------------------------------------------------------------------------
_NO_LEFT = r"(?<![\w.,+\-/:=#])"
_NO_RIGHT = r"(?![\w/]|[.,:\-]\d)"
#: One alternation (one pass per digit run); each form is a named group.
_PHONE = re.compile(
    # +CC then groups: +1 (415) 555-0100, +44 20 7946 0958, +4915112345678
    # (possessive: a number never borrows digits from the next one, and never backtracks)
    r"(?P<intl>(?<![\w+])\+[1-9]\d*+(?:(?:[ .\-]\(?|\()\d++\)?)*+)"
    # NANP: 415-555-0100, 415.555.0100, 415 555 0100, (415) 555-0100
    r"|(?P<nanp>" + _NO_LEFT + r"[2-9]\d{2}(?P<s1>[ .\-])[2-9]\d{2}(?P=s1)\d{4})"
    r"|(?P<nanp_area>(?<![\w(])\([2-9]\d{2}\) ?[2-9]\d{2}[ \-]\d{4})"
    # trunk-0 national: 020 7946 0958, 030 12345678, 07700 900123
    r"|(?P<trunk>" + _NO_LEFT + r"0[1-9]\d{1,4}[ \-]\d{3,4}[ \-]?\d{3,4})"
    # trunk-0 in pairs: 06 12 34 56 78, 06-12-34-56-78, 06.12.34.56.78
    r"|(?P<pairs>" + _NO_LEFT + r"0[1-9](?P<s2>[ .\-])\d{2}(?:(?P=s2)\d{2}){3})" + _NO_RIGHT,
    re.ASCII,
)
#: Digits each form may have (the international form is validated further in Python).
_PHONE_DIGITS = {"intl": (8, 15), "nanp": (10, 10), "nanp_area": (10, 10), "trunk": (10, 11),
                 "pairs": (10, 10)}  # fmt: skip
_TEL = re.compile(r"(?<!\w)tel:\+?\d[\d\-.() ]{5,20}\d", re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[./]\d{2}[./]\d{4}", re.ASCII)
#: An international number's printed groups: digits, single separators, one area in ().
_INTERNATIONAL = re.compile(r"\+\d{1,4}(?:[ .\-]?\(\d{1,5}\))?(?:[ .\-]?\d{1,6}){1,6}", re.ASCII)
_COMPACT_DATE = re.compile(r"\+(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])", re.ASCII)


def _phones(text: str, runs: Sequence[tuple[int, int]]) -> Iterable[Match]:
    if "tel:" in text:
        yield from (Match(m.start(), m.end(), Detector.PHONE) for m in _TEL.finditer(text))
    for m in _finditer(_PHONE, text, runs):
        found = m.group()
        fewest, most = _PHONE_DIGITS[m.lastgroup or "intl"]
        digits = sum(c in "0123456789" for c in found)
        if not fewest <= digits <= most or _DATE.search(found):
            continue
        if found.startswith("+") and (
            not _INTERNATIONAL.fullmatch(found) or _COMPACT_DATE.fullmatch(found)
        ):
            continue
        yield Match(m.start(), m.end(), Detector.PHONE)


#: Where card numbers and phones can be: runs of digits and their separators. The detailed
#: patterns run only inside these (with two characters of context for their boundaries).
_RUN = re.compile(r"[\d+(][\d ().\-]{5,}\d", re.ASCII)


def _digit_runs(text: str) -> list[tuple[int, int]]:
    return [(m.start(), min(m.end() + 2, len(text))) for m in _RUN.finditer(text)]


def _finditer(pattern: re.Pattern[str], text: str, runs: Sequence[tuple[int, int]],
              ) -> Iterable[re.Match[str]]:  # fmt: skip
    for start, end in runs:
        yield from pattern.finditer(text, start, end)


Finder = Callable[[str, Sequence[tuple[int, int]]], Iterable[Match]]
#: Each detector (as a plain int: IntFlag arithmetic is slow in this loop) with a cheap test a
#: string must pass before its patterns run.
_FINDERS: tuple[tuple[int, Callable[[str], bool], Finder], ...] = (
    (Detector.EMAIL.value, lambda t: "@" in t, _emails),
    (Detector.CREDIT_CARD.value, lambda t: True, _cards),
    (Detector.BEARER_TOKEN.value, lambda t: "eyJ" in t or "bearer" in t.lower(), _tokens),
    (Detector.PHONE.value, lambda t: True, _phones),
)
_DIGIT_DETECTORS = (Detector.CREDIT_CARD | Detector.PHONE).value


def _matches(text: str, mask: int, first_only: bool) -> Iterator[Match]:
    runs = _digit_runs(text) if mask & _DIGIT_DETECTORS else []
    for bit, applies, finder in _FINDERS:
        if mask & bit and applies(text):
            for m in finder(text, runs):
                yield m
                if first_only:
                    break


def find_pii(text: str, detectors: Detector = ALL_DETECTORS) -> list[Match]:
    """Every match of the chosen detectors, ordered by position (they may overlap)."""
    if not text:
        return []
    return sorted(_matches(text, detectors.value, False), key=lambda m: (m.start, -m.end))


def _scan_bits(text: str, mask: int) -> int:
    found = 0
    for m in _matches(text, mask, True):
        found |= m.detector.value
    return found


def scan(text: str, detectors: Detector = ALL_DETECTORS) -> Detector:
    """The detectors that match somewhere in a string."""
    return Detector(_scan_bits(text, detectors.value) if text else 0)


def scan_pool(values: Sequence[str], detectors: Detector = ALL_DETECTORS) -> U8:
    """One bitmask per distinct string (pool code order); each string is scanned once."""
    mask = detectors.value
    return np.array([_scan_bits(v, mask) if v else 0 for v in values], np.uint8)


def key_flags(values: Sequence[str], pii_keys: Collection[str]) -> U8:
    """CONFIGURED_KEY for the pool strings that are attribute keys configured as PII."""
    keys = frozenset(pii_keys)
    flag = int(Detector.CONFIGURED_KEY)
    return np.array([flag if v in keys else 0 for v in values], np.uint8)


def row_flags(
    attr_offsets: I64, attr_keys: I32, attr_values: I32, value_flags: U8, keys: U8,
    *, body: I32 | None = None,
) -> U8:  # fmt: skip
    """Per row: the OR of its values' flags, PII keys holding a value, and its body's flags."""
    n = attr_offsets.shape[0] - 1
    per_attr = value_flags[attr_values] | np.where(attr_values != 0, keys[attr_keys], 0)
    out = np.zeros(n, np.uint8)
    starts = attr_offsets[:-1]
    nonempty = attr_offsets[1:] > starts
    if per_attr.size and nonempty.any():
        out[nonempty] = np.bitwise_or.reduceat(per_attr.astype(np.uint8), starts[nonempty])
    if body is not None:
        out |= value_flags[body]
    return out


def fingerprint(text: str, key: bytes) -> str:
    """A keyed BLAKE2b fingerprint (``pii:`` + 32 hex digits); equal inputs, equal prints."""
    if not 16 <= len(key) <= 64:
        raise ConfigError("the PII fingerprint key must be 16 to 64 bytes")
    digest = hashlib.blake2b(
        text.encode("utf-8", "surrogatepass"), digest_size=16, key=key, person=b"behavior.pii"
    )
    return "pii:" + digest.hexdigest()


def redact(text: str, detectors: Detector = ALL_DETECTORS, key: bytes | None = None) -> str:
    """Every detected value replaced by ``[REDACTED:kind]`` (``kind#print`` given a key)."""
    for _ in range(_MAX_REDACT_PASSES):
        matches = find_pii(text, detectors)
        if not matches:
            return text
        text = _replace(text, matches, key)
    return text if not find_pii(text, detectors) else "[REDACTED]"


def _replace(text: str, matches: list[Match], key: bytes | None) -> str:
    parts: list[str] = []
    pos = 0
    start, end, kind = matches[0].start, matches[0].end, matches[0].detector
    for m in [*matches[1:], None]:
        if m is not None and m.start < end:
            end = max(end, m.end)
            continue
        label = _NAME_OF.get(kind, "pii")
        if key is not None:
            label += "#" + fingerprint(text[start:end], key)[4:20]
        parts += [text[pos:start], f"[REDACTED:{label}]"]
        pos = end
        if m is not None:
            start, end, kind = m.start, m.end, m.detector
    parts.append(text[pos:])
    return "".join(parts)
