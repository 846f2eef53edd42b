"""Enrichment: language, token counts and lemmas per message, and awkward input."""

from __future__ import annotations

import pyarrow as pa
import pytest

from conv_analytics.assets.enrich import fallback_mask
from conv_analytics.text.enrich import SCHEMA, enrich_texts, normalise_language, tokenizer_pipeline
from conv_analytics.text.redact import redact_texts


def rows(texts: list[str | None], hints: list[str | None] | None = None) -> list[dict]:
    hint_array = None if hints is None else pa.array(hints, type=pa.string())
    return enrich_texts(texts, hint_array).to_pylist()


def test_schema_and_order() -> None:
    table = enrich_texts(["Where is my order?", None, "Wo ist meine Bestellung bitte?"])
    assert table.schema == SCHEMA
    assert table.column("language").to_pylist() == ["en", "und", "de"]


def test_english_lemmas_and_counts() -> None:
    [row] = rows(["I can't find my orders, they're going to be late!"])
    assert row["language"] == "en"
    # I ca n't find my orders , they 're going to be late !
    assert row["token_count"] == 14
    assert row["lemmas"] == "i can not find my order they be go to be late"


@pytest.mark.parametrize(
    ("text", "lang", "expected_lemmas"),
    [
        ("Hola, mi pedido llegó roto y quiero devolverlo", "es", "llegar"),
        ("Meine Bestellungen sind noch nicht angekommen", "de", "bestellung"),
        ("Bonjour, je voudrais annuler l'abonnement", "fr", "vouloir annuler le abonnement"),
        ("Vorrei cambiare l'indirizzo di consegna", "it", "volere cambiare"),
        ("Gostaria de cancelar as minhas encomendas", "pt", "gostar de cancelar"),
    ],
)
def test_other_languages_use_their_tokenizer_and_lemmas(text: str, lang: str, expected_lemmas: str) -> None:
    [row] = rows([text])
    assert row["language"] == lang
    assert expected_lemmas in row["lemmas"]
    assert row["lemmas"] == row["lemmas"].lower()


def test_same_tokens_as_one_spacy_doc_per_message() -> None:
    texts = [
        "Hello , how are you ? I'm fine.Thanks",
        "e-mail me at [EMAIL] (or call [PHONE])!!",
        "It costs $12.50 -- see http://x.y/z?a=1 , ok?",
        "multiple   spaces\tand\nnewlines",
    ]
    nlp = tokenizer_pipeline("en")
    expected = [sum(not t.is_space for t in nlp(t)) for t in texts]
    assert [r["token_count"] for r in rows(texts, ["en"] * len(texts))] == expected


def test_placeholders_stay_single_tokens() -> None:
    redacted, _ = redact_texts(["mail bob@example.com or call +1 415 555 2671 today"])
    [row] = rows(redacted.to_pylist())
    assert row["lemmas"] == "mail [email] or call [phone] today"


def test_placeholders_survive_every_tokenizer() -> None:
    result = rows(["我的订单还没有到[EMAIL]。", "Mon numéro : [PHONE]."], ["zh", "fr"])
    assert result[0]["lemmas"].endswith(" [email]")
    assert result[1]["lemmas"] == "mon numéro [phone]"


def test_a_row_does_not_depend_on_its_batch() -> None:
    texts = ["Where is my order?", "Wo ist meine Bestellung?", "¿Dónde está mi pedido?", "ok"]
    together = rows(texts)
    assert [rows([t])[0] for t in texts] == together
    assert rows(texts[::-1]) == together[::-1]


def test_hints_override_detection() -> None:
    texts = ["Where is my order?", "Where is my order?", "Where is my order?"]
    result = rows(texts, ["de-DE", None, "und"])
    assert [r["language"] for r in result] == ["de", "en", "en"]
    assert result[0]["language_confidence"] == 1.0 and 0.5 < result[1]["language_confidence"] < 1.0
    assert normalise_language("pt_BR") == "pt"
    assert normalise_language("???") is None
    with pytest.raises(ValueError, match="languages_hint"):
        enrich_texts(["a", "b"], pa.array(["en"]))


def test_unknown_and_unsupported_languages_fall_back() -> None:
    result = rows(["注文した商品がまだ届きません", "ok", "გამარჯობა"], [None, None, "ka"])
    assert [r["language"] for r in result] == ["ja", "und", "ka"]
    assert all(r["token_count"] >= 1 for r in result)


def test_robust_input() -> None:
    big = "Where is my parcel? " * 50_000  # 1 MB
    texts = [None, "", "   \n ", "😀🎉👍", "\ud800 broken surrogate text", big, "x" * 200_000]
    result = rows(texts)
    assert result[0] == {"language": "und", "language_confidence": 0.0, "token_count": 0, "lemmas": None}
    assert result[1] == {"language": "und", "language_confidence": 0.0, "token_count": 0, "lemmas": ""}
    assert result[2]["token_count"] == 0
    assert result[3]["token_count"] >= 1 and result[3]["lemmas"] == ""
    assert result[4]["lemmas"] == "break surrogate text"  # lone surrogate -> U+FFFD
    assert result[5]["language"] == "en" and result[5]["token_count"] == 250_000
    assert result[6]["token_count"] == 1


def test_accepts_arrow_input_and_rejects_non_text() -> None:
    table = enrich_texts(pa.chunked_array([["Thanks a lot for your help"], [None]]))
    assert table.num_rows == 2
    with pytest.raises(TypeError):
        enrich_texts(pa.array([1, 2]))
    with pytest.raises(TypeError, match="text #0"):
        enrich_texts([b"bytes"])  # type: ignore[list-item]


def test_fallback_replies_are_assistant_messages_that_match_a_pattern() -> None:
    texts = pa.array(
        ["Sorry, I didn't understand 😅", "I didn't understand", "Lo siento, no he entendido", "OK", "ok then", ""],
        pa.large_string(),
    )
    roles = pa.array(["assistant", "user", "assistant", "assistant", "agent", "assistant"])
    assert fallback_mask(texts, roles, ()).to_pylist() == [True, False, True, False, False, False]
    # an operator's own pattern, case-insensitive like the defaults; the agent's "ok then" is no reply of the bot
    assert fallback_mask(texts, roles, (r"^ok",)).to_pylist() == [True, False, True, True, False, False]
    assert fallback_mask(texts.slice(0, 0), roles.slice(0, 0), ()).to_pylist() == []
