"""Markdown made from data (reports, Dagster metadata previews): every value is shown as literal text.

A channel name, topic label or message may hold HTML, emphasis, links or a table's `|`; escaped here
they print as the characters they are and cannot change the page around them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from html import escape as escape_html

# the characters that start emphasis, code, links or strike-through, or end a table cell (< > & are
# written as HTML entities, which keeps raw HTML out); `(` after an escaped `]` is plain text
SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def escape(value: object) -> str:
    """`value` as literal Markdown text on one line: no HTML, emphasis, links or table breaks."""
    return SPECIAL.sub(r"\\\1", escape_html(" ".join(str(value).split()), quote=False))


def table(header: Iterable[object], rows: Iterable[Iterable[object]]) -> str:
    """A Markdown table whose header and cells are escaped."""
    names = [escape(name) for name in header]
    lines = ["| " + " | ".join(names) + " |", "|" + "|".join("---" for _ in names) + "|"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def bullets(items: Iterable[object], empty: str = "none") -> str:
    """A Markdown list of escaped items (`empty`, in italics, when there are none)."""
    lines = [f"- {escape(item)}" for item in items]
    return "\n".join(lines) or f"_{escape(empty)}_"
