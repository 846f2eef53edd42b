"""Translation: the message pass (statuses, cache, redaction, failures), the LibreTranslate client
against a loopback server with LibreTranslate's API shape (its models cannot be downloaded here),
and the real Apertium pipe."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conv_analytics.text.language import detect_languages
from conv_analytics.translate import (
    FAILED,
    NO_PAIR,
    NONE,
    TRANSLATED,
    ApertiumPipe,
    LibreTranslate,
    TranslationCache,
    TranslatorError,
    make_translator,
    translate_messages,
)
from conv_analytics.translate.engines import translate_separated

API_KEY = "s3cret-key-value"


class FakeLibreTranslate:
    """LibreTranslate's API shape on 127.0.0.1: /languages, /translate (text or list), api_key
    checked; it "translates" by upper-casing and records every request body."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                return

            def _answer(self, status: int, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                fake.requests.append((self.path, {}))
                languages = [
                    {"code": "en", "name": "English", "targets": ["es", "fr"]},
                    {"code": "es", "name": "Spanish", "targets": ["en"]},
                    {"code": "fr", "name": "French", "targets": ["en"]},
                    {"code": "ja", "name": "Japanese", "targets": ["zh"]},
                ]
                self._answer(200, languages)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append((self.path, body))
                if body.get("api_key") != API_KEY:
                    self._answer(403, {"error": "Invalid API key"})
                    return
                q = body["q"]
                english = [t.upper() for t in q] if isinstance(q, list) else q.upper()
                self._answer(200, {"translatedText": english})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def posts(self) -> list[dict]:
        return [body for path, body in self.requests if path == "/translate"]


@pytest.fixture
def libre() -> Iterator[FakeLibreTranslate]:
    fake = FakeLibreTranslate()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def free_port_url() -> str:
    """An address where nothing listens (a server bound and closed again)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return f"http://127.0.0.1:{port}"


def test_libretranslate_statuses_batches_and_cache(libre: FakeLibreTranslate, tmp_path: Path) -> None:
    texts = ["hola amigo", "Where is it?", "bonjour", "hola amigo", "", None, "こんにちは", "😀", "hola amigo"]
    languages = ["es", "en", "fr", "es", "und", "und", "ja", "und", "es"]
    translator = make_translator("libretranslate", libre.url, API_KEY, cache_dir=tmp_path)
    first = translator(texts, languages)
    assert first.translation == [TRANSLATED, NONE, TRANSLATED, TRANSLATED, NONE, NONE, NO_PAIR, NONE, TRANSLATED]
    assert first.text_en == ["HOLA AMIGO", None, "BONJOUR", "HOLA AMIGO", None, None, None, None, "HOLA AMIGO"]
    # one request per language, each distinct text once
    assert [(b["source"], b["q"]) for b in libre.posts()] == [("es", ["hola amigo"]), ("fr", ["bonjour"])]
    assert first.sent == 2 and first.cached == 0

    # a new process (new cache object over the same folder) sends nothing again
    again = make_translator("libretranslate", libre.url, API_KEY, cache_dir=tmp_path)(texts, languages)
    assert again.text_en == first.text_en and again.translation == first.translation
    assert len(libre.posts()) == 2 and again.sent == 0 and again.cached == 2


def test_libretranslate_key_is_checked_and_never_shown(libre: FakeLibreTranslate) -> None:
    engine = LibreTranslate(libre.url, api_key="wrong-" + API_KEY)
    with pytest.raises(TranslatorError, match="CONV_ANALYTICS_TRANSLATOR_API_KEY") as caught:
        engine.translate(["hola"], "es")
    assert API_KEY not in str(caught.value) and API_KEY not in repr(engine)
    assert API_KEY not in repr(make_translator("libretranslate", libre.url, API_KEY))


def test_redaction_before_and_after(libre: FakeLibreTranslate) -> None:
    texts = ["escríbeme a juan@example.com o llama al +34 612 345 678", "mi tarjeta [CARD] y [EMAIL]"]
    result = make_translator("libretranslate", libre.url, API_KEY)(texts, ["es", "es"])
    sent = libre.posts()[0]["q"]
    assert "juan@example.com" not in json.dumps(sent) and "612" not in json.dumps(sent)
    # placeholders travel as private-use characters (engines translate "[CARD]"), and come back
    assert all("[" not in text for text in sent)
    assert result.text_en == ["ESCRÍBEME A [EMAIL] O LLAMA AL [PHONE]", "MI TARJETA [CARD] Y [EMAIL]"]


def test_translator_down_fails_naming_the_setting_or_counts_when_not_required(tmp_path: Path) -> None:
    url = free_port_url()
    texts, languages = ["hola", "bon dia", "hello"], ["es", "ca", "en"]
    for kind in ("apertium", "libretranslate"):
        with pytest.raises(TranslatorError, match="CONV_ANALYTICS_TRANSLATOR_URL"):
            make_translator(kind, url, timeout=5)(texts, languages)
        lenient = make_translator(kind, url, required=False, cache_dir=tmp_path, timeout=5)(texts, languages)
        assert lenient.translation == [FAILED, FAILED, NONE]
        assert lenient.text_en == [None, None, None]
        assert lenient.failed == 2 and len(lenient.errors) == 1


def test_factory_settings() -> None:
    assert make_translator("none").engine is None
    assert make_translator("none")(["hola"], ["es"]).translation == [NONE]
    assert isinstance(make_translator("apertium").engine, ApertiumPipe)
    with pytest.raises(ValueError, match="CONV_ANALYTICS_TRANSLATOR_URL"):
        make_translator("libretranslate")
    with pytest.raises(ValueError, match="CONV_ANALYTICS_TRANSLATOR must be"):
        make_translator("deepl")
    with pytest.raises(TranslatorError, match="not installed"):
        ApertiumPipe(command="no-such-apertium-command").translate(["hola"], "es")


def test_separated_batches_stay_aligned_when_a_separator_is_lost() -> None:
    calls: list[str] = []

    def eats_separators(text: str) -> str:
        calls.append(text)
        return text.replace("\ue0ff", "", 1).upper()

    assert translate_separated(["a", "b\ue0ffc", "d"], eats_separators) == ["A", "B C", "D"]
    assert calls[1:] == ["a", "b c", "d"]  # the batch, then one call per text


def test_cache_keys_by_hash_and_pair(tmp_path: Path) -> None:
    cache = TranslationCache(tmp_path)
    cache.put({"h1": "one", "h2": "two"}, "apertium:es-en")
    cache.close()
    reopened = TranslationCache(tmp_path)
    assert reopened.get(["h1", "h2", "h3"], "apertium:es-en") == {"h1": "one", "h2": "two"}
    assert reopened.get(["h1"], "apertium:ca-en") == {}
    assert reopened.get([f"h{i}" for i in range(5000)], "apertium:es-en").keys() == {"h1", "h2"}


def require_apertium() -> None:
    if shutil.which("apertium") is None or ApertiumPipe().pair("es") is None:
        message = "Debian's apertium and apertium-eng-spa are not installed: run scripts/system-deps"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.mark.apertium
def test_apertium_pipe_pairs_and_translation() -> None:
    require_apertium()
    pipe = ApertiumPipe()
    assert {pipe.pair(lang) for lang in ("es", "ca", "gl", "eu", "sr", "hr")} == {
        "spa-eng",
        "cat-eng",
        "gl-en",
        "eu-en",
        "hbs-eng",
    }
    assert pipe.pair("fr") is None and pipe.translate(["Bonjour"], "fr") is None
    assert pipe.translate(["Hola, mi pedido no ha llegado"], "es") == ["Hello, my request has not arrived"]


@pytest.mark.apertium
def test_apertium_pipe_batch_equals_one_by_one() -> None:
    """Texts with newlines, brackets and Apertium's own stream characters stay in their rows."""
    require_apertium()
    texts = [
        "Hola, mi pedido no ha llegado",
        "ha llegado",  # a fragment: must not be read as part of its neighbours' sentences
        "¿Dónde está\nmi paquete?",
        "precio: 5$ ^hola/adiós$ [nota] {x} \\ @*# #etiqueta @usuario quiero devolver",
        "Gracias\ue0ff por todo",
        "Muy mal servicio, nunca más",
        "Bueno.",  # a word that once moved into the previous text ("never Better")
        "El envío!",
    ] * 40
    pipe = ApertiumPipe()
    together = pipe.translate(texts, "es")
    assert together is not None and len(together) == len(texts)
    alone = [pipe.translate([t], "es")[0] for t in texts[:8]]  # type: ignore[index]
    assert together == alone * 40


@pytest.mark.apertium
def test_bad_input_never_crashes(tmp_path: Path) -> None:
    require_apertium()
    big = "Hola, quiero devolver el pedido porque llegó roto. " * 2000  # ~100 KB
    texts = [
        "",
        "   ",
        "😀🎉👍",
        big,
        "Hola 你好 привет مرحبا hello",
        "Bonjour, ma commande n'est pas arrivée",
        "Bon dia, la meva comanda encara no ha arribat",
        None,
        "\ud800 texto roto",
    ]
    languages, _ = detect_languages(texts)
    result = translate_messages(texts, languages, ApertiumPipe(), TranslationCache(tmp_path))
    statuses = dict(zip(range(len(texts)), result.translation, strict=True))
    assert statuses[0] == statuses[1] == statuses[2] == statuses[7] == NONE
    assert statuses[3] == TRANSLATED and result.text_en[3].startswith("Hello, I want to")  # type: ignore[union-attr]
    assert len(result.text_en[3]) > 50_000  # type: ignore[arg-type]
    assert statuses[4] in (NONE, NO_PAIR, TRANSLATED)  # mixed scripts: whatever was detected, no crash
    assert statuses[5] == NO_PAIR and result.text_en[5] is None
    assert statuses[6] == TRANSLATED and "arrived" in result.text_en[6]  # type: ignore[operator]
    assert set(result.translation) <= {NONE, TRANSLATED, NO_PAIR}


def test_enrich_command_keeps_order_and_adds_fields(libre: FakeLibreTranslate, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from conv_analytics.cli.enrich import enrich

    records = [
        {"id": 1, "text": "Hola, mi pedido no ha llegado. Escríbeme a ana@example.com"},
        {"id": 2, "text": "Where is my order?"},
        {"id": 3, "text": "😀"},
        {"id": 4, "body": "no text field"},
        {"id": 5, "text": "Je voudrais annuler ma commande, merci beaucoup"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\nnot json\n")
    target = tmp_path / "out.jsonl"
    arguments = ["--input", source, "--output", target, "--translator", "libretranslate"]
    arguments += ["--translator-url", libre.url, "--cache-dir", tmp_path / "cache"]
    result = CliRunner().invoke(enrich, arguments, env={"CONV_ANALYTICS_TRANSLATOR_API_KEY": API_KEY})
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2, 3, 5]
    assert [r["language"] for r in rows] == ["es", "en", "und", "fr"]
    assert [r["translation"] for r in rows] == [TRANSLATED, NONE, NONE, TRANSLATED]
    assert rows[0]["text"] == "Hola, mi pedido no ha llegado. Escríbeme a [EMAIL]"
    assert rows[0]["text_en"] == "HOLA, MI PEDIDO NO HA LLEGADO. ESCRÍBEME A [EMAIL]"
    assert rows[1]["text_en"] is None and rows[2]["language_confidence"] == 0.0
    assert "line 4: skipped" in result.output and "line 6: skipped" in result.output
    assert API_KEY not in result.output

    down = CliRunner().invoke(enrich, [*arguments[:-4], "--translator-url", free_port_url()])
    assert down.exit_code == 1 and "CONV_ANALYTICS_TRANSLATOR_URL" in down.output


@pytest.mark.apertium
def test_categorizer_labels_the_english_translation(tmp_path: Path) -> None:
    require_apertium()
    from conv_analytics.categorize import Categorizer

    texts = ["El servicio es horrible y estoy muy enfadado", "Muchas gracias, excelente atención", "Thanks!"]
    model = Categorizer.load()
    raw = model.predict(texts).column("sentiment").to_pylist()
    translated = model.predict(texts, translator=make_translator("apertium", cache_dir=tmp_path))
    assert translated.column("sentiment").to_pylist() == ["negative", "positive", "positive"]
    assert raw[1] != "positive"  # "muchas gracias, excelente" is nothing to VADER untranslated
