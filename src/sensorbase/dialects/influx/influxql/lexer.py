"""InfluxQL's tokens, scanned on demand at a position the parser gives.

A regular expression literal (`/cpu.*/`) and the division operator share `/`; InfluxDB's own
scanner lets the parser decide, and so does this one: `Lexer.token` never returns a regex,
`Lexer.regex` scans one where the grammar expects it (after `=~`, `!~`, in FROM, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal[
    "ident",  # bare or "double quoted"
    "keyword",  # a bare identifier that is a keyword (value upper-cased)
    "string",  # 'single quoted'
    "integer",
    "number",  # with a decimal point or an exponent
    "duration",  # an integer with a unit, 1h30m (value in nanoseconds)
    "regex",
    "op",  # operators and punctuation
    "eof",
]

_KEYWORDS = """ALL ALTER ANY AS ASC BEGIN BY CREATE CONTINUOUS DATABASE DATABASES DEFAULT
    DELETE DESC
    DESTINATIONS DIAGNOSTICS DISTINCT DROP DURATION END EVERY EXPLAIN FIELD FOR FROM GRANT
    GRANTS GROUP GROUPS IN INF INSERT INTO KEY KEYS KILL LIMIT MEASUREMENT MEASUREMENTS NAME
    OFFSET ON ORDER PASSWORD POLICY POLICIES PRIVILEGES QUERIES QUERY READ REPLICATION RESAMPLE
    RETENTION REVOKE SELECT SERIES SET SHARD SHARDS SLIMIT SOFFSET STATS SUBSCRIPTION
    SUBSCRIPTIONS TAG TO USER USERS VALUES WHERE WITH WRITE AND OR FILL TRUE FALSE SHOW"""
KEYWORDS = frozenset(_KEYWORDS.split())
# Duration units, longest first so that `ms` is not read as `m` then `s`.
DURATION_NS = {
    "ns": 1,
    "ms": 1_000_000,
    "us": 1_000,
    "u": 1_000,
    "µ": 1_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_UNITS = sorted(DURATION_NS, key=len, reverse=True)
_OPS = ("=~", "!~", "!=", "<>", "<=", ">=", "::", "=", "<", ">", "+", "-", "*", "/", "%")
_PUNCT = "(),;."
MAX_INT = 2**63 - 1


class ParseError(Exception):
    """A query that is not InfluxQL this server reads; `pos` is the character it stopped at."""

    def __init__(self, message: str, pos: int, text: str) -> None:
        line = text.count("\n", 0, pos) + 1
        char = pos - (text.rfind("\n", 0, pos) + 1) + 1
        super().__init__(f"{message} at line {line}, char {char}")
        self.pos = pos


@dataclass(frozen=True, slots=True)
class Token:
    kind: Kind
    value: str | int | float
    start: int
    end: int

    def describe(self) -> str:
        """The token as InfluxDB's messages name it (`found FROM`, `found EOF`)."""
        if self.kind == "eof":
            return "EOF"
        if self.kind == "keyword":
            return str(self.value)
        return str(self.value)


def _is_digit(ch: str) -> bool:
    """An ASCII digit: `str.isdigit` also takes '²' and other digits int() refuses."""
    return "0" <= ch <= "9"


def _is_ident_start(ch: str) -> bool:
    return ch.isalpha() or ch == "_"


def _is_ident_char(ch: str) -> bool:
    return ch.isalpha() or _is_digit(ch) or ch == "_"


class Lexer:
    def __init__(self, text: str) -> None:
        self.text = text

    def skip(self, pos: int) -> int:
        """The first position at or after `pos` that is not whitespace or a comment."""
        text, n = self.text, len(self.text)
        while pos < n:
            if text[pos].isspace():
                pos += 1
            elif text.startswith("--", pos):
                end = text.find("\n", pos)
                pos = n if end < 0 else end + 1
            elif text.startswith("/*", pos):
                end = text.find("*/", pos + 2)
                if end < 0:
                    raise ParseError("unterminated comment", pos, text)
                pos = end + 2
            else:
                break
        return pos

    def token(self, pos: int) -> Token:
        text = self.text
        start = pos = self.skip(pos)
        if pos >= len(text):
            return Token("eof", "", pos, pos)
        ch = text[pos]
        if _is_ident_start(ch):
            while pos < len(text) and _is_ident_char(text[pos]):
                pos += 1
            word = text[start:pos]
            if word.upper() in KEYWORDS:
                return Token("keyword", word.upper(), start, pos)
            return Token("ident", word, start, pos)
        if ch == '"':
            value, pos = self._quoted(pos, '"')
            return Token("ident", value, start, pos)
        if ch == "'":
            value, pos = self._quoted(pos, "'")
            return Token("string", value, start, pos)
        if _is_digit(ch):
            return self._number(pos)
        for op in _OPS:
            if text.startswith(op, pos):
                return Token("op", "!=" if op == "<>" else op, start, pos + len(op))
        if ch in _PUNCT:
            return Token("op", ch, start, pos + 1)
        raise ParseError(f"found {ch}, expected a token", start, text)

    def regex(self, pos: int) -> Token | None:
        """A `/.../` literal at `pos` (after blanks), or None if none starts there."""
        text = self.text
        while pos < len(text) and text[pos].isspace():  # `/*` here starts a regex, not a comment
            pos += 1
        start = pos
        if pos >= len(text) or text[pos] != "/":
            return None
        pos += 1
        out: list[str] = []
        while True:
            if pos >= len(text):
                raise ParseError("unterminated regex", start, text)
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text) and text[pos + 1] == "/":
                out.append("/")
                pos += 2
            elif ch == "/":
                return Token("regex", "".join(out), start, pos + 1)
            else:
                out.append(ch)
                pos += 1

    def _quoted(self, pos: int, quote: str) -> tuple[str, int]:
        text, start = self.text, pos
        pos += 1
        out: list[str] = []
        while True:
            if pos >= len(text) or text[pos] == "\n":
                what = "string" if quote == "'" else "identifier"
                raise ParseError(f"unterminated {what}", start, text)
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text):
                nxt = text[pos + 1]
                escapes = {"n": "\n", "\\": "\\", "'": "'", '"': '"'}
                if nxt not in escapes:
                    raise ParseError(f"bad escape \\{nxt}", pos, text)
                out.append(escapes[nxt])
                pos += 2
            elif ch == quote:
                return "".join(out), pos + 1
            else:
                out.append(ch)
                pos += 1

    def _number(self, pos: int) -> Token:
        text, start = self.text, pos
        while pos < len(text) and _is_digit(text[pos]):
            pos += 1
        digits_end = pos
        if pos < len(text) and self._unit_at(pos):
            return self._duration(start)
        is_float = False
        if pos + 1 < len(text) and text[pos] == "." and _is_digit(text[pos + 1]):
            is_float = True
            pos += 1
            while pos < len(text) and _is_digit(text[pos]):
                pos += 1
        if pos < len(text) and text[pos] in "eE":
            after = pos + 1 + (pos + 1 < len(text) and text[pos + 1] in "+-")
            if after < len(text) and _is_digit(text[after]):
                is_float = True
                pos = after
                while pos < len(text) and _is_digit(text[pos]):
                    pos += 1
        if pos < len(text) and _is_ident_char(text[pos]):
            raise ParseError(f"found {text[start : pos + 1]}, expected a number", start, text)
        if is_float:
            return Token("number", float(text[start:pos]), start, pos)
        value = int(text[start:digits_end])
        if value > MAX_INT:
            raise ParseError(f"unable to parse integer {text[start:pos]}", start, text)
        return Token("integer", value, start, pos)

    def _unit_at(self, pos: int) -> str | None:
        for unit in _UNITS:
            end = pos + len(unit)
            if self.text.startswith(unit, pos) and not (
                end < len(self.text) and _is_ident_char(self.text[end]) and not self._more(end)
            ):
                return unit
        return None

    def _more(self, pos: int) -> bool:
        """Whether a compound duration's next part (digits and a unit) starts at `pos`."""
        end = pos
        while end < len(self.text) and _is_digit(self.text[end]):
            end += 1
        return end > pos and self._unit_at(end) is not None

    def _duration(self, start: int) -> Token:
        text, pos, total = self.text, start, 0
        while pos < len(text) and _is_digit(text[pos]):
            digits = pos
            while pos < len(text) and _is_digit(text[pos]):
                pos += 1
            unit = self._unit_at(pos)
            if unit is None:
                raise ParseError(f"invalid duration {text[start:pos]}", start, text)
            total += int(text[digits:pos]) * DURATION_NS[unit]
            pos += len(unit)
        if total > MAX_INT:
            raise ParseError(f"overflowed duration {text[start:pos]}", start, text)
        if pos < len(text) and _is_ident_char(text[pos]):
            raise ParseError(f"invalid duration {text[start : pos + 1]}", start, text)
        return Token("duration", total, start, pos)
