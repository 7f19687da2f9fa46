"""Splitting SEA DSL text into declaration blocks, their annotations and continuation lines.

SEA is line oriented: a declaration starts at column 0 with a keyword (``Flow "PlaceOrder"``);
the indented lines after it, and unindented lines that cannot start a declaration (``as: ...``,
``from "A" to "B"``, a closing ``}``), continue it. Annotations (``@name value``) may sit on the
declaration line, on their own lines, or several on one line; a value whose brackets are still
open at the end of a line continues on the next lines.

The lexer only cuts text apart. It never decodes annotation values and never decides what a
keyword means beyond "is this the start of a declaration" — that is :mod:`sidecar.spec.sea`'s job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

#: Declarations the loader interprets; matched case-insensitively, as the SEA parser does.
KNOWN_KEYWORDS = {k.lower(): k for k in ("Entity", "Flow", "Policy", "Metric", "Event")}
#: Annotations that describe the file, not the declaration before them.
FILE_ANNOTATIONS = frozenset({"namespace", "context", "version", "owner", "profile"})
#: Words that open a continuation clause even when written at column 0.
_CONTINUATION_WORDS = frozenset({"from", "to", "in", "as", "quantity", "per", "priority"})

# Strings first so that brackets, '@' and '//' inside them are ignored. Every alternative is
# anchored on a distinct first character, so matching is linear (no backtracking).
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|//|[\[\]{}]|@[A-Za-z_]\w*|(?<![\w.])as:')
_WORD = re.compile(r"[A-Za-z_]\w*")
_WORDS_AND_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"?|[^\s"]+')
_CLOSERS = frozenset("]}")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"?')
_NAME = re.compile(r'"((?:[^"\\]|\\.)*)"|([^\s"@]+)')
# Bounded digit runs: int() refuses strings longer than 4300 digits, and quantities never need it.
INTEGER = re.compile(r"[-+]?\d{1,15}")
_DECIMAL = re.compile(r"[-+]?\d{1,15}(?:\.\d{1,15})?")


@dataclass(slots=True)
class Annotation:
    """One ``@name value`` as written; ``text`` may span lines (joined with newlines)."""

    name: str
    text: str
    line: int
    #: The bracket left open when the value ran into the next declaration or the end of file.
    unclosed: str | None = None


@dataclass(slots=True)
class Block:
    """A declaration with everything that continues it.

    ``keyword`` is the canonical keyword for known declarations (``Flow``), the word as written
    for unknown ones (``Dimension``), ``"@"`` for file annotations and ``""`` for text that
    belongs to no declaration.
    """

    keyword: str
    line: int
    head: str = ""
    annotations: list[Annotation] = field(default_factory=list)
    #: Continuation lines (and ``as: ...`` segments) that are not annotations: (line, text).
    clauses: list[tuple[int, str]] = field(default_factory=list)

    @property
    def known(self) -> bool:
        """True for the declarations the loader interprets."""
        return self.keyword in KNOWN_KEYWORDS.values()


@dataclass(slots=True)
class _State:
    blocks: list[Block] = field(default_factory=list)
    #: Brackets opened by the annotation whose value is still being read.
    stack: list[str] = field(default_factory=list)
    open_annotation: Annotation | None = None

    @property
    def current(self) -> Block | None:
        return self.blocks[-1] if self.blocks else None


def split_blocks(text: str) -> list[Block]:
    """Cut SEA text into blocks, in file order."""
    state = _State()
    if text.startswith("\ufeff"):  # editors on Windows save a BOM; the loader decodes plain UTF-8
        text = text[1:]
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        stripped = line.strip()
        if not stripped or stripped.startswith(("//", "#")):
            continue
        keyword = _declaration_keyword(line)
        if state.open_annotation is not None:
            if keyword is not None or stripped.startswith("@"):
                _close_unterminated(state)
            else:
                _continue_annotation(state, line, number)
                continue
        _read_line(state, line, keyword, number)
    if state.open_annotation is not None:
        _close_unterminated(state)
    return state.blocks


def _declaration_keyword(line: str) -> str | None:
    """The keyword when ``line`` starts a declaration at column 0, else None."""
    match = _WORD.match(line)
    if match is None:
        return None
    word = match.group()
    rest = line[match.end() :]
    if rest and not (rest[0].isspace() or rest[0] == '"'):
        return None
    lower = word.lower()
    if lower in KNOWN_KEYWORDS:
        return KNOWN_KEYWORDS[lower]
    if lower in _CONTINUATION_WORDS or not word[0].isupper():
        return None
    return word


def _read_line(state: _State, line: str, keyword: str | None, number: int) -> None:
    if keyword is not None:
        block = Block(keyword, number)
        state.blocks.append(block)
        lead, segments = _segments(state, line)
        block.head = lead.strip()[len(keyword) :].strip()
        _add_segments(state, block, segments, number)
        return
    lead, segments = _segments(state, line)
    at_column_0 = not line[0].isspace()
    current = state.current
    if (
        segments
        and segments[0][0] != "as:"
        and not lead.strip()
        and (
            current is None
            or current.keyword == "@"
            or (at_column_0 and segments[0][0] in FILE_ANNOTATIONS)
        )
    ):
        block = Block("@", number)
        state.blocks.append(block)
        _add_segments(state, block, segments, number)
        return
    if current is None or current.keyword == "@":
        current = Block("", number)
        state.blocks.append(current)
    if lead.strip():
        current.clauses.append((number, lead.strip()))
    _add_segments(state, current, segments, number)


def _continue_annotation(state: _State, line: str, number: int) -> None:
    annotation = state.open_annotation
    assert annotation is not None  # guarded by the caller
    lead, segments = _segments(state, line)
    annotation.text += "\n" + lead
    if state.stack:
        return  # still open; ``segments`` is empty because marks only count at depth 0
    state.open_annotation = None
    block = state.current
    assert block is not None  # an open annotation always belongs to a block
    _add_segments(state, block, segments, number)


def _close_unterminated(state: _State) -> None:
    assert state.open_annotation is not None  # guarded by the callers
    state.open_annotation.unclosed = state.stack[0] if state.stack else None
    state.open_annotation = None
    state.stack.clear()


def _segments(state: _State, line: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a line at top-level ``@name`` and ``as:`` marks (outside strings and brackets).

    Returns the text before the first mark and (mark name, text after it) pairs; ``as:`` has
    the name ``"as:"``. A trailing ``//`` comment is dropped. ``state.stack`` carries open
    brackets across lines.
    """
    if not state.stack:
        simple = _simple_segments(line)
        if simple is not None:
            return simple
    marks: list[tuple[int, int, str]] = []
    end = len(line)
    if "as:" in line or any(c in line for c in '"@/[]{}'):
        for match in _TOKEN.finditer(line):
            token = match.group()
            first = token[0]
            if first == '"':
                continue
            if token == "//":
                end = match.start()
                break
            if first in "[{":
                state.stack.append(first)
            elif first in _CLOSERS:
                if state.stack:
                    state.stack.pop()
            elif not state.stack:
                name = token[1:] if first == "@" else token
                marks.append((match.start(), match.end(), name))
    if not marks:
        return line[:end], []
    segments = []
    for i, (_, stop, name) in enumerate(marks):
        nxt = marks[i + 1][0] if i + 1 < len(marks) else end
        segments.append((name, line[stop:nxt]))
    return line[: marks[0][0]], segments


def _simple_segments(line: str) -> tuple[str, list[tuple[str, str]]] | None:
    """:func:`_segments` for the common lines, without a Python loop over every token.

    Applies to lines with no comment, no ``as:``, brackets balanced and at most one annotation,
    written first; None sends the line through the full scan. Strings are blanked out first so
    that their contents cannot look like syntax.
    """
    if not any(c in line for c in "@/[{") and "as:" not in line:
        return line, []  # nothing that can mark, comment or open a value
    bare = _STRING.sub('""', line) if '"' in line else line
    if (
        "//" in bare
        or "as:" in bare
        or bare.count("[") != bare.count("]")
        or bare.count("{") != bare.count("}")
    ):
        return None
    at_signs = bare.count("@")
    if at_signs == 0:
        return line, []
    body = line.lstrip()
    match = _WORD.match(body, 1) if at_signs == 1 and body.startswith("@") else None
    if match is None:
        return None
    return line[: len(line) - len(body)], [(match.group(), body[match.end() :])]


def _add_segments(
    state: _State, block: Block, segments: list[tuple[str, str]], number: int
) -> None:
    for name, text in segments:
        if name == "as:":
            block.clauses.append((number, "as: " + text.strip()))
        else:
            annotation = Annotation(name, text.strip(), number)
            block.annotations.append(annotation)
    last_is_annotation = bool(segments) and segments[-1][0] != "as:"
    if state.stack and last_is_annotation:
        state.open_annotation = block.annotations[-1]
    else:
        state.stack.clear()


def iter_tokens(text: str) -> Iterator[str]:
    """Words and double-quoted strings of a clause, in order."""
    return (m.group() for m in _WORDS_AND_STRINGS.finditer(text))


def split_name(head: str) -> tuple[str | None, str]:
    """The declared name (``"Place Order"`` or a bare word) and the text after it."""
    match = _NAME.match(head)
    if match is None:
        return None, head
    quoted, bare = match.groups()
    name = unquote(f'"{quoted}"') if quoted is not None else bare
    return (name.strip() or None), head[match.end() :]


def key_values(tokens: list[str], keys: set[str]) -> tuple[dict[str, str], list[str]]:
    """``key value`` pairs of a clause (keys case-insensitive) and the tokens left over."""
    pairs: dict[str, str] = {}
    leftover: list[str] = []
    i = 0
    while i < len(tokens):
        key = tokens[i].lower()
        if key in keys and i + 1 < len(tokens) and key not in pairs:
            pairs[key] = tokens[i + 1]
            i += 2
        else:
            leftover.append(tokens[i])
            i += 1
    return pairs, leftover


def unquote(token: str) -> str:
    """The text of a double-quoted token (escapes decoded); other tokens unchanged."""
    if len(token) >= 2 and token[0] == token[-1] == '"':
        try:
            value = json.loads(token)
        except ValueError:
            return token[1:-1]
        return value if isinstance(value, str) else token[1:-1]
    return token


def number(token: str) -> float | int | str:
    """A numeric token as a number; anything else as text."""
    if INTEGER.fullmatch(token):
        return int(token)
    if _DECIMAL.fullmatch(token):
        return float(token)
    return unquote(token)


def preview(text: str) -> str:
    """A short quoted excerpt of skipped text for a note."""
    text = " ".join(text.split())
    return repr(text if len(text) <= 40 else text[:37] + "...")
