"""vader_compound against vaderSentiment itself: VADER's rules and quirks, input forms, bad input."""

from __future__ import annotations

import random
import string

import numpy as np
import pyarrow as pa
import pytest
from vaderSentiment import vaderSentiment as vs

from conv_analytics.categorize.sentiment import (
    _rewrite_table,
    _rewritten,
    sentiment_labels,
    sentiment_tables,
    vader_compound,
)
from conv_analytics.config import Config, SettingError

ANALYZER = vs.SentimentIntensityAnalyzer()

RULE_CASES = [
    "VADER is smart, handsome, and funny.",
    "VADER is smart, handsome, and funny!",
    "VADER is very smart, handsome, and funny.",
    "VADER is VERY SMART, handsome, and FUNNY.",
    "VADER is VERY SMART, handsome, and FUNNY!!!",
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!",
    "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.",
    "The book was only kind of good.",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Today SUX!",
    "Today only kinda sux! But I'll get by, lol",
    "Make sure you :) or :D today!",
    "Not bad at all",
    "Sentiment analysis has never been good.",
    "Sentiment analysis has never been this good!",
    "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!",
    "On the other hand, VADER is quite bad ass",
    "VADER is such a badass!",
    "Without a doubt, excellent idea.",
    "Roger Dodger is one of the least compelling variations on this theme.",
    "Roger Dodger is at least compelling as a variation on the theme.",
    "it was the least bad option",
    "very least good",
    "least good",
    "Not such a badass after all.",
    "no no good",
    "no good",
    "no",
    "NO WAY this is good",
    "There is no or nor good here",
    "this is sort of good and kind of bad",
    "it was the bomb, a real kiss of death, to die for, yeah right",
    "my beating heart at the bus stop",
    "I don't like it, I DON'T",
    "he can't not love it",
    "never so happy",
    "never this sad",
    "it is so this great",
    "without any doubt great",
    "good good but good bad good",
    "great but great",
    "but good",
    "good but",
    "bad but but good",
    "good?? really???",
    "good????",
    "good!!!!!!",
    "?!?! bad ?!",
    "ALL CAPS GOOD TEXT",
    "MIXED caps GOOD text",
    "!!! ... :) :( <3 </3",
    "I :'( cry",
    "good. bad, ugly; happy: sad-",
    "'good' \"bad\" (happy) [sad]",
    "a b c d e f good",
    "EXTREMELY bad and ExTrEmElY good",
]

NON_ASCII_CASES = [
    "Catch utf-8 emoji such as 💘 and 💋 and 😁",
    "😁",
    "😁😁 😡",
    "love😁it",
    "good 👍🏽 day",
    "❤️ you",
    "I ♥ it",
    "ÉTÉ GOOD day",
    "ÉTÉ été GOOD",
    "Über GOOD, Ärger BAD",
    "ǅ GOOD",
    "这是一个很好的测试 good",
    "Это ОЧЕНЬ хорошо GOOD",
    "مرحبا good",
    "good\u00a0day\u2003happy",
    "\u3000happy\u3000",
    "\u212a GOOD",
    "good\x1cbad\x1fhappy",
    "é! good",
    "éé! good",
    "🙂 🙃 🤣 😂",
]


def reference(texts: list[str]) -> np.ndarray:
    return np.array([ANALYZER.polarity_scores(t)["compound"] for t in texts])


def assert_parity(texts: list[str]) -> None:
    ours = vader_compound(texts, device="cpu")
    expected = reference(texts)
    bad = [(t, o, e) for t, o, e in zip(texts, ours, expected, strict=True) if abs(o - e) > 1e-4]
    assert not bad, bad[:10]


def test_vader_rules_match_reference() -> None:
    assert_parity(RULE_CASES)


def test_non_ascii_emoji_and_unicode_space_match_reference() -> None:
    assert_parity(NON_ASCII_CASES)


def test_random_token_soup_matches_reference() -> None:
    """Random mixes of the words the rules care about, in random case and punctuation."""
    tables = sentiment_tables()
    rng = random.Random(5)
    lexicon = [w for w in ANALYZER.lexicon if w.isascii()]
    specials = (
        list(vs.BOOSTER_DICT)
        + list(vs.SPECIAL_CASES)
        + vs.NEGATE
        + ["but", "BUT", "least", "at", "very", "no", "or", "nor", "kind", "of", "never"]
        + ["so", "this", "without", "doubt", "the", "n't", "isn't", ":)", "!", "?", "😁", "💔"]
    )
    assert len(tables.valence) > 7000
    texts = []
    for _ in range(2000):
        words = []
        for _ in range(rng.randint(0, 14)):
            word = rng.choice(specials if rng.random() < 0.5 else lexicon)
            shape = rng.random()
            if shape < 0.2:
                word = word.upper()
            elif shape < 0.3:
                word = word.capitalize()
            if rng.random() < 0.15:
                word += rng.choice(string.punctuation) * rng.randint(1, 3)
            words.append(word)
        texts.append(" ".join(words))
    assert_parity(texts)


def test_input_forms_agree() -> None:
    texts = ["good day", None, "", "terrible, awful 😡", "I am NOT happy"]
    as_list = vader_compound(texts, device="cpu")
    assert as_list[1] == 0.0 and as_list[2] == 0.0
    assert as_list[3] == pytest.approx(ANALYZER.polarity_scores("terrible, awful 😡")["compound"], abs=1e-4)
    for form in (
        pa.array(texts),
        pa.array(texts, type=pa.large_string()),
        pa.chunked_array([texts[:2], texts[2:]]),
        pa.array(["x"] + texts)[1:],
        pa.array(texts).dictionary_encode(),
    ):
        np.testing.assert_array_equal(vader_compound(form, device="cpu"), as_list)
    assert vader_compound([], device="cpu").shape == (0,)


def test_single_string_is_rejected() -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        vader_compound("good day")


def test_unknown_device_is_rejected() -> None:
    with pytest.raises(ValueError, match="device 'tpu' is not one of auto, cpu, cuda"):
        vader_compound(["good"], device="tpu")
    # the setting the device comes from names its variable
    with pytest.raises(SettingError, match="CONV_ANALYTICS_DEVICE='tpu' is not valid"):
        Config({"CONV_ANALYTICS_DEVICE": "tpu"}).value(Config.device)


def test_invalid_utf8_scores_finite() -> None:
    payloads = [b"good \xff\xfe day", b"\xc3", b"\xf0\x9f\x98", b"bad \xed\xa0\x80 \xf0\x9f\x98\x81"]
    offsets = np.cumsum([0] + [len(p) for p in payloads]).astype(np.int32)
    array = pa.Array.from_buffers(
        pa.string(),
        len(payloads),
        [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(payloads))],
    )
    scores = vader_compound(array, device="cpu")
    assert np.isfinite(scores).all()
    assert scores[0] == pytest.approx(ANALYZER.polarity_scores("good day")["compound"])
    assert scores[1] == 0.0 and scores[2] == 0.0
    # An emoji sends the text through the Python pre-pass, which decodes with U+FFFD like this.
    repaired = payloads[3].decode("utf-8", "replace")
    assert scores[3] == pytest.approx(ANALYZER.polarity_scores(repaired)["compound"])


def test_kernel_pre_pass_writes_what_python_translates_valid_or_not() -> None:
    """The pre-pass kernel against Python's decode (errors -> U+FFFD), translate and encode, on random
    byte soups of emoji, spaces of every kind, the Kelvin sign, and malformed UTF-8 of each sort."""
    rng = random.Random(11)
    pieces = [
        *(e.encode() for e in ("😁", "💔", "💘", "❤", "☺", "\u00a0", "\u3000", "\u212a", "\u2028", "é", "字")),
        *(c.encode() for c in "\t\n\x0b\x0c\r\x1c\x1f good bad :) !?"),
        b"\xc0\x80",  # overlong
        b"\xed\xa0\x80",  # surrogate
        b"\xe2\x82",  # truncated
        b"\x80",  # stray continuation byte
        b"\xf5\x80\x80\x80",  # beyond U+10FFFF
        b"\xf0\x9f\x98",  # emoji cut short
    ]
    texts = [b"".join(rng.choice(pieces) for _ in range(rng.randrange(0, 12))) for _ in range(3000)]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in texts])
    data = np.frombuffer(b"".join(texts), dtype=np.uint8)
    rows = np.array([i for i in range(len(texts)) if i % 3], dtype=np.int64)
    expected = [texts[i].decode("utf-8", "replace").translate(_rewrite_table()).encode() for i in rows]
    assert sum(t.decode("utf-8", "replace") != t.decode("utf-8", "ignore") for t in texts) > 500  # malformed
    new_offsets, new_data = _rewritten(offsets, data, rows)
    got = [bytes(new_data[new_offsets[k] : new_offsets[k + 1]]) for k in range(len(rows))]
    assert got == expected
    valid = [i for i in rows if texts[i].decode("utf-8", "replace") == texts[i].decode("utf-8", "ignore")]
    new_offsets, new_data = _rewritten(offsets, data, np.array(valid, dtype=np.int64))  # all by the kernel
    assert bytes(new_data[: new_offsets[-1]]) == b"".join(
        texts[i].decode().translate(_rewrite_table()).encode() for i in valid
    )


def test_megabyte_text_with_but_scores_finite() -> None:
    text = "good great " * 50_000 + " but " + "good bad :( " * 40_000
    assert len(text) > 1_000_000
    scores = vader_compound([text, "short good"], device="cpu")
    assert np.isfinite(scores).all() and -1.0 <= scores[0] <= 1.0
    assert scores[1] == pytest.approx(ANALYZER.polarity_scores("short good")["compound"])


def test_labels_use_vader_thresholds() -> None:
    labels = sentiment_labels(np.array([-0.9, -0.05, -0.0499, 0.0, 0.0499, 0.05, 1.0]))
    assert labels.to_pylist() == [
        "negative",
        "negative",
        "neutral",
        "neutral",
        "neutral",
        "positive",
        "positive",
    ]
    assert sentiment_labels(np.array([])).to_pylist() == []
    with pytest.raises(ValueError, match="finite"):
        sentiment_labels(np.array([0.1, np.nan]))


def test_every_ascii_byte_splits_strips_and_cases_like_vader() -> None:
    """The kernel's byte table decides whitespace, punctuation, case, "!"/"?" and "n't": each ASCII
    byte around, between and inside sentiment words scores as vaderSentiment scores it."""
    texts = []
    for byte in range(1, 128):
        c = chr(byte)
        texts += [
            f"good{c}bad {c}GREAT{c} nice{c}{c}",
            f"not{c}good at{c}least{c}ok {c}{c}love it",
            f"isn{c}t good, DON{c}T like{c} it!? {c}",
        ]
    assert_parity(texts)
