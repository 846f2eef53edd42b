"""Language identification: scripts, hand-written support-chat sentences, chat noise, real data,
and the bundled model loaded with the network shut off."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conv_analytics.text.language import MIN_CONFIDENCE, UNDETERMINED, detect_language, detect_languages

# Support-chat sentences written for these tests (not taken from any corpus).
SENTENCES: dict[str, list[str]] = {
    "es": [
        "Hola, mi pedido todavía no ha llegado y ya pasaron dos semanas.",
        "¿Pueden decirme cuándo me van a devolver el dinero?",
        "La aplicación se cierra cada vez que intento pagar con la tarjeta.",
        "Quiero cambiar la dirección de envío de mi último pedido.",
        "Gracias por la ayuda, ya funciona todo correctamente.",
        "No puedo iniciar sesión en mi cuenta desde ayer por la tarde.",
        "El producto llegó roto y necesito que me envíen otro.",
        "Me cobraron dos veces el mismo mes, por favor revisen la factura.",
        "¿Tienen este modelo en color negro y en talla mediana?",
        "Buenos días, quería saber si hacen envíos a las islas.",
        "Llevo media hora esperando y nadie me contesta.",
        "Por favor, cancelen mi suscripción a partir del próximo mes.",
    ],
    "de": [
        "Hallo, meine Bestellung ist immer noch nicht angekommen.",
        "Können Sie mir sagen, wann ich mein Geld zurückbekomme?",
        "Die App stürzt jedes Mal ab, wenn ich bezahlen will.",
        "Ich möchte die Lieferadresse für meine letzte Bestellung ändern.",
        "Vielen Dank für die schnelle Hilfe, jetzt funktioniert alles.",
        "Seit gestern kann ich mich nicht mehr in mein Konto einloggen.",
        "Das Paket war beschädigt und der Inhalt ist kaputt.",
        "Mir wurde der Betrag zweimal vom Konto abgebucht.",
        "Gibt es diese Jacke auch in Größe M und in Blau?",
        "Guten Tag, liefern Sie auch nach Österreich und in die Schweiz?",
        "Ich warte schon seit einer halben Stunde auf eine Antwort.",
        "Bitte kündigen Sie mein Abo zum Ende des Monats.",
    ],
    "fr": [
        "Bonjour, ma commande n'est toujours pas arrivée.",
        "Pouvez-vous me dire quand je serai remboursé ?",
        "L'application plante à chaque fois que je veux payer.",
        "Je voudrais changer l'adresse de livraison de ma dernière commande.",
        "Merci beaucoup pour votre aide, tout fonctionne maintenant.",
        "Depuis hier je n'arrive plus à me connecter à mon compte.",
        "Le colis était abîmé et l'article est cassé.",
        "On m'a débité deux fois le même montant ce mois-ci.",
        "Avez-vous ce pull en taille moyenne et en bleu ?",
        "Est-ce que vous livrez aussi en Belgique et en Suisse ?",
        "J'attends une réponse depuis une demi-heure.",
        "Merci de résilier mon abonnement à la fin du mois.",
    ],
    "it": [
        "Buongiorno, il mio ordine non è ancora arrivato.",
        "Potete dirmi quando riceverò il rimborso?",
        "L'applicazione si chiude ogni volta che provo a pagare.",
        "Vorrei cambiare l'indirizzo di consegna del mio ultimo ordine.",
        "Grazie mille per l'aiuto, adesso funziona tutto.",
        "Da ieri non riesco più ad accedere al mio account.",
        "Il pacco era danneggiato e il prodotto è rotto.",
        "Mi avete addebitato due volte lo stesso importo questo mese.",
        "Avete questa giacca nella taglia media e di colore blu?",
        "Spedite anche in Svizzera o solo in Italia?",
        "Sto aspettando una risposta da mezz'ora.",
        "Per favore disdite il mio abbonamento dalla fine del mese.",
    ],
    "pt": [
        "Olá, a minha encomenda ainda não chegou.",
        "Podem dizer-me quando vou receber o reembolso?",
        "O aplicativo fecha sempre que tento pagar com o cartão.",
        "Gostaria de mudar o endereço de entrega do meu último pedido.",
        "Muito obrigado pela ajuda, agora está tudo a funcionar.",
        "Desde ontem não consigo entrar na minha conta.",
        "A caixa chegou danificada e o produto está partido.",
        "Fui cobrado duas vezes pelo mesmo valor este mês.",
        "Vocês têm este casaco no tamanho médio e na cor azul?",
        "Bom dia, vocês fazem entregas para os Açores?",
        "Estou à espera de uma resposta há meia hora.",
        "Por favor cancelem a minha assinatura a partir do próximo mês.",
    ],
    "en": [
        "Hi, my order still hasn't arrived after two weeks.",
        "Can you tell me when I will get my money back?",
        "The app crashes every time I try to pay with my card.",
        "I would like to change the delivery address for my last order.",
        "Thanks a lot for your help, everything works now.",
        "I haven't been able to log in to my account since yesterday.",
    ],
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_hand_written_sentences(lang: str) -> None:
    predicted = [detect_language(s) for s in SENTENCES[lang]]
    correct = sum(p == lang for p in predicted)
    wrong_language = [p for p in predicted if p not in (lang, UNDETERMINED)]
    assert correct >= len(SENTENCES[lang]) - 1, predicted
    assert not wrong_language, predicted


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Здравствуйте, мой заказ до сих пор не пришёл.", "ru"),
        ("Добрий день, моє замовлення досі не прийшло.", "uk"),
        ("Γεια σας, η παραγγελία μου δεν έχει έρθει ακόμα.", "el"),
        ("שלום, ההזמנה שלי עדיין לא הגיעה", "he"),
        ("مرحبا، طلبي لم يصل بعد", "ar"),
        ("我的订单还没有到", "zh"),
        ("注文した商品がまだ届きません", "ja"),
        ("주문한 상품이 아직 도착하지 않았어요", "ko"),
        ("สวัสดีครับ สินค้ายังไม่มาถึง", "th"),
        ("मेरा ऑर्डर अभी तक नहीं आया है", "hi"),
    ],
)
def test_scripts(text: str, expected: str) -> None:
    assert detect_language(text) == expected


@pytest.mark.parametrize(
    "text", [None, "", "   ", "ok", "ja", "😀😀😀", "12345", "#48213", "???", "@user http://t.co/x", "[EMAIL] [PHONE]"]
)
def test_too_little_evidence_is_und(text: str | None) -> None:
    assert detect_languages([text]) == ([UNDETERMINED], [0.0])


def test_batch_keeps_order_and_gives_confidences() -> None:
    texts = ["Quiero cancelar mi pedido, por favor", None, "Where is my parcel?", "Danke für die schnelle Hilfe"]
    languages, confidences = detect_languages(texts)
    assert languages == ["es", UNDETERMINED, "en", "de"]
    assert confidences[1] == 0.0
    assert all(MIN_CONFIDENCE <= c <= 1.0 for i, c in enumerate(confidences) if i != 1)
    assert detect_languages(iter(texts)) == (languages, confidences)


def test_chat_noise_and_shouting_do_not_decide() -> None:
    # mentions, links, hashtags and capitals are what lid.176 gets wrong on tweets
    assert detect_language("@user ESSE FILHO DO SERGINHO QUE COISA MAIS FOFA DO MUNDO #AltasHoras") == "pt"
    assert detect_language("RT @user: mira esto https://example.com/a/b #EnVivo me encanta") == "es"


def test_mixed_languages_get_low_confidence_or_und() -> None:
    """A message that is half one language, half another is no confident guess."""
    mixed = "ok merci danke gracias grazie obrigado thanks"
    languages, confidences = detect_languages([mixed, "Merci beaucoup pour votre aide, tout fonctionne."])
    assert languages[0] == UNDETERMINED or confidences[0] < 0.6
    assert languages[1] == "fr" and confidences[1] > 0.9


def test_bundled_model_loads_without_network(tmp_path: Path) -> None:
    """A fresh process with every socket refused and an empty model cache still detects."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "from conv_analytics.text.language import detect_languages\n"
        "print(detect_languages(['Hola, mi pedido no ha llegado'])[0][0])\n"
    )
    env = {"FTLANG_CACHE": str(tmp_path), "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": ""}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "es"
    assert list(tmp_path.iterdir()) == []  # nothing downloaded into the cache


def test_long_text_is_fast_enough_and_correct() -> None:
    text = "I would like to know where my parcel is. " * 25_000  # ~1 MB
    assert detect_language(text) == "en"


def test_umsab_accuracy(shared_data: Path) -> None:
    """Tweets in seven languages (UMSAB validation): >= 0.95 overall and >= 0.88 each."""
    right: dict[str, list[bool]] = {}
    for lang in ("ar", "de", "en", "es", "fr", "it", "pt"):
        with (shared_data / "umsab" / f"{lang}_validation.jsonl").open(encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
        right[lang] = [p == lang for p in detect_languages(texts)[0]]
    every = [r for rows in right.values() for r in rows]
    assert sum(every) / len(every) >= 0.95
    assert {lang: round(sum(r) / len(r), 3) for lang, r in right.items() if sum(r) / len(r) < 0.88} == {}


def test_dailydialog_english_accuracy(shared_data: Path) -> None:
    """Real English chat of >= 4 words must come out "en" at least 97% of the time."""
    with (shared_data / "dailydialog" / "validation.jsonl").open(encoding="utf-8") as f:
        texts = [m["text"] for line in f for m in json.loads(line)["messages"]]
    texts = [t for t in texts if len(t.split()) >= 4]
    accuracy = sum(detect_language(t) == "en" for t in texts) / len(texts)
    assert accuracy >= 0.97
