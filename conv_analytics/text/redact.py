"""PII redaction applied at ingest, before any message text is stored.

Arrow's RE2 engine first picks the texts that could hold anything (a digit, '@', '/', 'www.');
most chat messages hold none. In the rest one regex, built from the candidate kinds the text
can hold, finds URLs, e-mail addresses and digit groups; digit groups are classified in Python
(Luhn check for payment cards, digit count and shape for phone numbers, including local numbers
such as 555-1234), so order numbers, prices, times and dates stay readable.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conv_analytics.text.arrow import as_large_string_array

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
CARD = "[CARD]"
URL = "[URL]"

# Characters that end a URL when they are its last character (sentence punctuation).
_URL_TRAILING = ".,;:!?)]}'\"»…"

# The three kinds of candidate, in priority order where they overlap (a URL may hold an
# address or digits).
_BRANCHES = {
    "url": r"""
        (?<![\w.@/-])
        (?:
            (?:https?|ftp)://[^\s<>"'`]{1,2048}
          | www\.[^\s<>"'`]{1,2048}
          | [a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){0,8}\.[a-z]{2,24}/[^\s<>"'`]{0,2048}
        )
    """,
    "email": r"""
        (?<![\w.+%-])
        [\w+%-][\w.+%-]{0,63}@[\w-]{1,63}(?:\.[\w-]{1,63}){0,8}\.[^\W\d_]{2,24}
        (?![\w-])
    """,
    "num": r"""
        # Not glued to a word, a reference like "#48213", a currency sign or a path,
        # and not the continuation of a decimal, a time or a range.
        (?<![\w#$€£¥@/+])(?<!\d[.,:-])
        (?:\+\ ?)?
        (?:\(\d{1,5}\)[\ .-]?)?
        \d{1,19}
        (?:[\ .-]?\(\d{1,5}\)[\ .-]?\d{1,19}|[\ .-]\d{1,19})*
        # Not followed by a word, a unit, a path, or more digits after '.', ',', ':' or '-'.
        (?![\w/%€$£¥]|[.,:-]\d)
    """,
}


@cache
def candidate_pattern(kinds: tuple[str, ...] = tuple(_BRANCHES)) -> re.Pattern[str]:
    """One regex for the given candidate kinds; leaving out kinds a text cannot hold (no '@',
    no '/') makes the scan several times faster."""
    return re.compile("|".join(f"(?P<{kind}>{_BRANCHES[kind]})" for kind in kinds), re.VERBOSE | re.IGNORECASE)


# Every candidate contains one of these; most chat messages contain none. RE2 syntax, run by
# Arrow over the whole column, so only the few candidate texts reach Python.
_ANCHOR_RE2 = r"[\p{Nd}@/]|(?i:www\.)"
_DIGIT = re.compile(r"\d")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
# Local numbers without an area code: 555-1234 and 12 34 56 78. A year range (2023-2024) or an
# unseparated order number (1234567) does not have these shapes.
_LOCAL_PHONE = re.compile(r"\d{3}[ .-]\d{4}|\d{2}(?:[ .-]\d{2}){3}")


def luhn_valid(digits: str) -> bool:
    """Payment card check digit; rules out most random 13-19 digit numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def classify_number(candidate: str) -> str | None:
    """Return the placeholder for a digit group, or None when it is an ordinary number."""
    digits = "".join(_DIGIT.findall(candidate))
    n = len(digits)
    if candidate.startswith("+"):
        return PHONE if 7 <= n <= 15 else None
    has_paren = "(" in candidate
    if 13 <= n <= 19 and not has_paren and "." not in candidate and luhn_valid(digits):
        return CARD
    if digits.startswith("00") and 10 <= n <= 15:
        return PHONE
    if _IPV4.fullmatch(candidate):
        return None
    separated = candidate != digits
    if 10 <= n <= 12 or (separated and n == 9) or _LOCAL_PHONE.fullmatch(candidate):
        return PHONE
    return None


class _Replacer:
    """re.sub callback that also counts the replacements it made."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, m: re.Match[str]) -> str:
        kind = m.lastgroup
        text = m.group()
        if kind == "num":
            label = classify_number(text)
            if label is None:
                return text
            self.count += 1
            return label
        if kind == "url":
            stripped = text.rstrip(_URL_TRAILING)
            # Keep a closing bracket that belongs to the URL, e.g. wiki links "Foo_(bar)".
            while stripped.count("(") > stripped.count(")") and len(stripped) < len(text):
                stripped += text[len(stripped)]
            if not stripped or stripped.lower() in ("http://", "https://", "ftp://", "www."):
                return text
            self.count += 1
            return URL + text[len(stripped) :]
        self.count += 1
        return EMAIL


def redact_one(text: str) -> tuple[str, int]:
    """Redact one message; returns the new text and how many items were replaced."""
    kinds = tuple(
        kind
        for kind, present in (
            ("url", "/" in text or "www." in text.lower()),
            ("email", "@" in text),
            ("num", _DIGIT.search(text) is not None),
        )
        if present
    )
    if not kinds:
        return text, 0
    rep = _Replacer()
    out = candidate_pattern(kinds).sub(rep, text)
    return out, rep.count


def redact_texts(texts: Iterable[str | None] | pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Redact e-mails, phone numbers, card numbers and URLs; nulls stay null.

    Returns the redacted texts as a large_string array and the redactions per text (int32).
    """
    column = as_large_string_array(texts)
    counts = np.zeros(len(column), dtype=np.int32)
    mask = pc.fill_null(pc.match_substring_regex(column, _ANCHOR_RE2), False)
    rows = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
    if len(rows) == 0:
        return column, counts
    redacted = []
    for i, text in zip(rows, column.take(rows).to_pylist(), strict=True):
        new_text, counts[i] = redact_one(text)
        redacted.append(new_text)
    replacements = pa.array(redacted, type=pa.large_string())
    return pc.replace_with_mask(column, mask, replacements), counts
