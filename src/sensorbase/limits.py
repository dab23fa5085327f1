"""The fixed limits on what a request may name and carry (the configurable ones are settings).
docs/limits.md lists every limit, fixed or configurable; each route refuses past one with a 4xx
naming the field, in its dialect's shape.

Names (bucket and source keys, field names, organisation keys, signal and metric names) are
1 to `MAX_NAME_CHARS` characters without control characters: a NUL could not be stored by
PostgreSQL at all, and the others only make a name that no one can type or see. The cap is the
same on every route, whether the name is declared first or appears on a first write.
"""

from __future__ import annotations

import re

MAX_NAME_CHARS = 200
# What a point carries beside its value (meta, labels, position), as JSON text: dakkio's
# example metadata is ~80 bytes; 8 KiB leaves room without letting one point weigh megabytes.
MAX_POINT_META_BYTES = 8 * 1024
# Meta of a bucket, source or series (a Madevo data source keeps its schema there).
MAX_CATALOG_META_BYTES = 64 * 1024
MAX_TEXT_CHARS = 2000  # descriptions and other free text
MAX_ID = 2**63 - 1  # an integer id: a 64-bit signed integer in both stores
MAX_OFFSET = 1_000_000_000  # a page offset of a listing

CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NUL = re.compile("\x00")
# What `str.strip()` removes beside the control characters (Python's whitespace), spelled out:
# `\s` means other sets in other regex engines (ECMAScript's lacks U+0085 and has U+FEFF).
BLANK = r"\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
# `name_problem` as a JSON Schema / pydantic pattern, with a length of 1 to MAX_NAME_CHARS
# beside it: no control character, and one character at least that is not blank.
NAME_PATTERN = rf"^[^\x00-\x1f\x7f]*[^\x00-\x1f\x7f{BLANK}][^\x00-\x1f\x7f]*$"
TEXT_PATTERN = r"^[^\x00]*$"  # free text: anything PostgreSQL can store


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a bucket, source, field or organisation, or None if it can."""
    if not name or not name.strip():
        return "must not be empty"
    if len(name) > MAX_NAME_CHARS:
        return f"must be at most {MAX_NAME_CHARS} characters (got {len(name)})"
    if CONTROL.search(name):
        return "must not contain control characters (U+0000 to U+001F, U+007F)"
    return None


def text_problem(text: str, max_chars: int = MAX_TEXT_CHARS) -> str | None:
    """Why free text (a description, a key's name) cannot be stored, or None."""
    if len(text) > max_chars:
        return f"must be at most {max_chars} characters (got {len(text)})"
    if "\x00" in text:
        return "must not contain U+0000 (NUL)"
    return None
