"""Spanish and Catalan conversations through the whole daily graph with a real apertium-apy server:
text_en, intent, topic and sentiment in the lake, nothing translated twice on a rerun, and a server that
stops mid-run fails the step with the setting named, then the rerun completes with nothing lost."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from conv_analytics.config import Config
from conv_analytics.definitions import Platform
from conv_analytics.io.resources import lake_resource
from conv_analytics.runner import materialize_range
from conv_analytics.schemas import CONVERSATION_CATEGORIES, ENRICHED_MESSAGES
from conv_analytics_tests.conftest import require_server
from conv_analytics_tests.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration

DAY = date(2026, 10, 5)
CONVERSATIONS = {
    "es-1": ("es", ["Hola, mi pedido no ha llegado todavía", "Es un servicio terrible, quiero mi dinero"]),
    "es-2": ("es", ["Muchas gracias, el problema está resuelto", "Excelente atención, muy contento"]),
    "ca-1": ("ca", ["Bon dia, la meva comanda encara no ha arribat", "Vull cancel·lar la comanda"]),
    "en-1": ("en", ["Where is my parcel?", "Thanks, that helps a lot"]),
}


def write_source(folder: Path) -> int:
    """One day of conversations in the files source; returns the number of messages."""
    folder.mkdir(parents=True)
    start = datetime(DAY.year, DAY.month, DAY.day, 9, tzinfo=timezone.utc)
    conversations, messages = [], []
    for n, (conversation_id, (_, texts)) in enumerate(CONVERSATIONS.items()):
        began = start + timedelta(minutes=10 * n)
        conversations.append(
            {
                "conversation_id": conversation_id,
                "user_id": f"u-{conversation_id}",
                "channel": "web",
                "started_at": began.isoformat(),
                "status": "resolved",
            }
        )
        for i, text in enumerate(texts):
            for role, body in (("user", text), ("assistant", "Gracias, lo reviso." if n < 2 else "OK.")):
                messages.append(
                    {
                        "message_id": f"{conversation_id}-{i}-{role}",
                        "conversation_id": conversation_id,
                        "role": role,
                        "text": body,
                        "sent_at": (began + timedelta(minutes=2 * i, seconds=30 * (role != "user"))).isoformat(),
                    }
                )
    for entity, rows in (("conversations", conversations), ("messages", messages)):
        path = folder / f"{entity}-{DAY.isoformat()}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(messages)


def run_day(config: Config) -> None:
    graph = Platform.build(config).graph
    materialize_range(config, graph.daily_chain, [DAY.isoformat(), (DAY + timedelta(days=1)).isoformat()])


def read(config: Config, table: str, schema) -> list[dict]:
    return lake_resource(config).lake().read(table, [DAY.isoformat()], schema).to_pylist()


def test_spanish_and_catalan_go_through_the_graph_in_english(tmp_path: Path) -> None:
    apy = require_server("CONV_ANALYTICS_TRANSLATOR_URL", "translation through apertium-apy")
    home = tmp_path / "home"
    messages = write_source(home / "source")
    with FaultProxy(apy) as proxy:
        config = Config(home=home, start_date=date(2024, 1, 1), translator="apertium", translator_url=proxy.url)
        run_day(config)
        sent = len(proxy.requests_to("/translate"))
        assert sent > 0

        enriched = read(config, "enriched_messages", ENRICHED_MESSAGES)
        assert len(enriched) == messages
        by_id = {m["message_id"]: m for m in enriched}
        spanish = by_id["es-1-0-user"]
        assert (spanish["language"], spanish["translation"]) == ("es", "translated")
        assert "request" in spanish["text_en"] or "order" in spanish["text_en"]
        assert spanish["text"] == CONVERSATIONS["es-1"][1][0]  # the original is kept
        catalan = by_id["ca-1-0-user"]
        assert (catalan["language"], catalan["translation"]) == ("ca", "translated")
        assert catalan["text_en"] and "arrived" in catalan["text_en"]
        english = by_id["en-1-0-user"]
        assert (english["translation"], english["text_en"]) == ("none", None)
        # labels come from the English: the complaint reads negative, the thanks positive
        assert by_id["es-1-1-user"]["sentiment"] == "negative"
        assert by_id["es-2-1-user"]["sentiment"] == "positive"
        assert all(m["intent"] for m in enriched if m["role"] == "user")

        categories = {c["conversation_id"]: c for c in read(config, "conversation_categories", CONVERSATION_CATEGORIES)}
        assert {c: categories[c]["language"] for c in CONVERSATIONS} == {c: v[0] for c, v in CONVERSATIONS.items()}
        assert categories["es-1"]["translated_messages"] == 4  # two user messages and two replies
        assert categories["es-2"]["sentiment"] == "positive" and categories["es-1"]["sentiment_mean"] < 0
        assert all(categories[c]["topic"] for c in CONVERSATIONS)

        run_day(config)  # a rerun: every text is in the cache
        assert len(proxy.requests_to("/translate")) == sent
        assert read(config, "enriched_messages", ENRICHED_MESSAGES) == enriched


def test_a_translator_that_stops_fails_the_step_and_the_rerun_completes(tmp_path: Path) -> None:
    apy = require_server("CONV_ANALYTICS_TRANSLATOR_URL", "translation through apertium-apy")
    home = tmp_path / "home"
    messages = write_source(home / "source")
    with FaultProxy(apy) as proxy:
        url = proxy.url
    # the proxy is closed: its address now answers nothing, like a stopped server
    config = Config(home=home, start_date=date(2024, 1, 1), translator="apertium", translator_url=url)
    with pytest.raises(RuntimeError, match="CONV_ANALYTICS_TRANSLATOR_URL"):
        run_day(config)
    assert not (home / "lake" / "enriched_messages").exists()

    config = Config(home=home, start_date=date(2024, 1, 1), translator="apertium", translator_url=apy)
    run_day(config)
    enriched = read(config, "enriched_messages", ENRICHED_MESSAGES)
    assert len(enriched) == messages == len({m["message_id"] for m in enriched})
    foreign = [m for m in enriched if m["role"] == "user" and m["message_id"].startswith(("es", "ca"))]
    assert len(foreign) == 6 and {m["translation"] for m in foreign} == {"translated"}
