"""Translation through a real apertium-apy server (`scripts/servers start apertium`), behind a
counting fault proxy: batching, the cache across runs, a slow or stopped server."""

from __future__ import annotations

from pathlib import Path

import pytest

from conv_analytics.text.language import detect_languages
from conv_analytics.translate import FAILED, NO_PAIR, NONE, TRANSLATED, ApertiumPipe, TranslatorError, make_translator
from conv_analytics_tests.conftest import require_server
from conv_analytics_tests.fault_proxy import Fault, FaultProxy

pytestmark = pytest.mark.integration

TEXTS = [
    "Hola, mi pedido no ha llegado",
    "Bon dia, la meva comanda encara no ha arribat",
    "Where is my order?",
    "Bonjour, ma commande n'est pas arrivée",
    "Muy mal servicio, nunca más",
    "Hola, mi pedido no ha llegado",
    "😀",
]


@pytest.fixture
def apy() -> str:
    return require_server("CONV_ANALYTICS_TRANSLATOR_URL", "translation through apertium-apy")


def test_pairs_batches_and_cache(apy: str, tmp_path: Path) -> None:
    languages, _ = detect_languages(TEXTS)
    assert languages[:5] == ["es", "ca", "en", "fr", "es"]
    with FaultProxy(apy) as proxy:
        first = make_translator("apertium", proxy.url, cache_dir=tmp_path)(TEXTS, languages)
        assert first.translation == [TRANSLATED, TRANSLATED, NONE, NO_PAIR, TRANSLATED, TRANSLATED, NONE]
        assert first.text_en[0] == "Hello, my request has not arrived" == first.text_en[5]
        assert "arrived" in first.text_en[1]  # type: ignore[operator]
        # one request for the pair list, one per language for its distinct texts
        assert len(proxy.requests_to("/listPairs")) == 1
        assert len(proxy.requests_to("/translate")) == 2
        # the same translations as the local pipe
        assert first.text_en == make_translator("apertium")(TEXTS, languages).text_en

        again = make_translator("apertium", proxy.url, cache_dir=tmp_path)(TEXTS, languages)
        assert again.text_en == first.text_en and again.sent == 0
        assert len(proxy.requests_to("/translate")) == 2  # nothing sent twice


def test_slow_or_stopped_server(apy: str, tmp_path: Path) -> None:
    languages, _ = detect_languages(TEXTS)
    with FaultProxy(apy) as proxy:
        proxy.add(Fault("slow", "/translate", delay=3.0))
        with pytest.raises(TranslatorError, match="CONV_ANALYTICS_TRANSLATOR_URL"):
            make_translator("apertium", proxy.url, timeout=1)(TEXTS, languages)

        proxy.add(Fault("drop", "/translate"), times=10)
        lenient = make_translator("apertium", proxy.url, required=False, cache_dir=tmp_path)(TEXTS, languages)
        assert lenient.translation == [FAILED, FAILED, NONE, NO_PAIR, FAILED, FAILED, NONE]
        assert lenient.failed == 4 and lenient.errors

        proxy.faults.clear()  # the server is back: the rerun translates everything, once
        rerun = make_translator("apertium", proxy.url, required=False, cache_dir=tmp_path)(TEXTS, languages)
        assert rerun.translation.count(TRANSLATED) == 4 and rerun.failed == 0


def test_big_batch_matches_pipe(apy: str) -> None:
    texts = [f"El pedido número {i} llegó roto. Quiero devolver #todo @tienda *ya*" for i in range(300)]
    texts.append("Hola, quiero devolver el pedido porque llegó roto. " * 2000)  # ~100 KB
    server = make_translator("apertium", apy).engine
    english = server.translate(texts, "es")  # type: ignore[union-attr]
    assert english == ApertiumPipe().translate(texts, "es")
