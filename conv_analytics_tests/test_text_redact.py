"""PII redaction: what must be replaced, what must stay, and awkward input."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from conv_analytics.text.redact import classify_number, luhn_valid, redact_texts


def redact(text: str) -> str:
    out, _ = redact_texts([text])
    return out[0].as_py()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to john.doe@example.com please", "write to [EMAIL] please"),
        ("Mail: Anna_B+news@mail.co.uk.", "Mail: [EMAIL]."),
        ("contact ÉLODIE@société.fr", "contact [EMAIL]"),
        ("call me on +1 (415) 555-2671", "call me on [PHONE]"),
        ("my number is 415-555-2671.", "my number is [PHONE]."),
        ("tel (415) 555 2671 after 5pm", "tel [PHONE] after 5pm"),
        ("UK: +44 20 7946 0958 or 020 7946 0958", "UK: [PHONE] or [PHONE]"),
        ("Ruf mich an: 0049 30 12345678", "Ruf mich an: [PHONE]"),
        ("mon portable 06 12 34 56 78", "mon portable [PHONE]"),
        ("llámame al 612 345 678", "llámame al [PHONE]"),
        ("phone 4155552671", "phone [PHONE]"),
        ("or locally 555-1234, after six", "or locally [PHONE], after six"),
        ("ring 555 1234", "ring [PHONE]"),
        ("ring me on 12 34 56 78", "ring me on [PHONE]"),
        ("card 4111 1111 1111 1111 expired", "card [CARD] expired"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("amex 3782 822463 10005!", "amex [CARD]!"),
        ("number:5555555555554444", "number:[CARD]"),
        ("see https://example.com/reset?token=abc.", "see [URL]."),
        ("(docs at http://wiki.example.org/Foo_(bar))", "(docs at [URL])"),
        ("go to www.example.com, then log in", "go to [URL], then log in"),
        ("link: bit.ly/3xYz", "link: [URL]"),
    ],
)
def test_replaces_pii(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "my order #48213 has not arrived",
        "order 48213 and order no. 1234567",
        "the 2023-2024 season, scores 3-4 and 12-14",
        "meet at 10:30 or 14:45:00",
        "it cost $1,299.99 (or €1.299,99) yesterday",
        "total 12,345,678.90 USD",
        "delivered on 2024-05-12 10:30, invoice dated 12/05/2024",
        "see you 05.12.2024 at 9",
        "2024-05-12T10:30:00Z",
        "zip 94105, apt 12B, room 1203",
        "version 1.2.3 and 3.11.7",
        "server 192.168.1.10 is down",
        "1 2 3 4 5 6",
        "between 10 and 20%",
        "reference ABC-123456789-XY",
        "tracking 1Z999AA10123456784",
        "1234 5678 9012 3456",  # 16 digits, Luhn-invalid: not a card
        "a 25-digit run 1234567890123456789012345",
        "I'm 25 years old and 180 cm tall",
        "and/or either",
        "e.g. the U.S. team",
        "user@localhost",
    ],
)
def test_keeps_ordinary_numbers_and_text(text: str) -> None:
    assert redact(text) == text


def test_counts_per_text_and_nulls_stay_null() -> None:
    texts = ["a@b.io and c@d.io", None, "", "nothing here", "call 415-555-2671"]
    out, counts = redact_texts(texts)
    assert out.type == pa.large_string()
    assert out.to_pylist() == ["[EMAIL] and [EMAIL]", None, "", "nothing here", "call [PHONE]"]
    assert counts.dtype == np.int32
    assert counts.tolist() == [2, 0, 0, 0, 1]


@pytest.mark.parametrize("arrow_type", [pa.string(), pa.large_string()])
def test_accepts_arrow_arrays(arrow_type: pa.DataType) -> None:
    column = pa.chunked_array([["x@y.com", None], ["fine"]], type=arrow_type)
    out, counts = redact_texts(column)
    assert out.to_pylist() == ["[EMAIL]", None, "fine"]
    assert counts.tolist() == [1, 0, 0]
    empty, none = redact_texts(pa.array([], type=arrow_type))
    assert len(empty) == 0 and len(none) == 0


def test_robust_input() -> None:
    big = ("word " * 200_000) + "mail a@b.co " + "1" * 300 + " " + "x." * 10_000
    texts = ["\ud800 lone surrogate a@b.io", "😀🎉", big, "http://" * 50_000, "@" * 100_000]
    out, counts = redact_texts(texts)
    values = out.to_pylist()
    assert values[0] == "\ufffd lone surrogate [EMAIL]"
    assert values[1] == "😀🎉"
    assert values[2].count("[EMAIL]") == 1 and counts[2] == 1
    assert len(values) == 5


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="text #1 is int"):
        redact_texts(["ok", 5])
    with pytest.raises(TypeError, match="single string"):
        redact_texts("not a list")
    with pytest.raises(TypeError, match="Arrow type int64"):
        redact_texts(pa.array([1, 2]))


def test_luhn_and_classification() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert classify_number("4111 1111 1111 1111") == "[CARD]"
    assert classify_number("+49 30 1234567") == "[PHONE]"
    assert classify_number("2024-05-12") is None
