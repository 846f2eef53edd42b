"""The embedded default: a seeded, deterministic support-chat data set, written as files-source exports.

Each day is generated from its own seed, so the data of a day does not depend on how many days are
asked for. It is built to exercise every metric: channels and languages, users who come back (some
after weeks), bot and human-agent replies with realistic latencies, escalations, fallbacks, abandoned,
open and resolved conversations, a spread of topics, intents and sentiment, personal data to redact,
conversations that cross midnight, and a few malformed records for the quarantine.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

EPOCH = date(2024, 1, 1)
CHANNELS = (("web", 40), ("whatsapp", 25), ("app", 20), ("email", 10), ("sms", 5))
LANGUAGES = (("en", 60), ("es", 18), ("de", 12), ("fr", 10))
HOURLY_WEIGHT = (1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 10, 11, 11, 10, 9, 8, 7, 6, 5, 4, 3)

# topic -> language -> user openings (neutral, negative)
OPENINGS: dict[str, dict[str, tuple[str, ...]]] = {
    "billing": {
        "en": (
            "I was charged twice for my subscription this month, can you check my invoice?",
            "Why is my bill higher than usual? I don't understand the extra fee.",
            "This is unacceptable, you charged my card again after I paid the invoice!",
        ),
        "es": (
            "Me han cobrado dos veces la suscripción este mes, ¿pueden revisar mi factura?",
            "¿Por qué mi factura es más alta de lo normal?",
        ),
        "de": (
            "Mir wurde das Abo diesen Monat zweimal berechnet, können Sie meine Rechnung prüfen?",
            "Warum ist meine Rechnung höher als sonst?",
        ),
        "fr": (
            "J'ai été facturé deux fois pour mon abonnement ce mois-ci, pouvez-vous vérifier ma facture ?",
            "Pourquoi ma facture est-elle plus élevée que d'habitude ?",
        ),
    },
    "delivery": {
        "en": (
            "Where is my package? The tracking has not changed for three days.",
            "My order was supposed to arrive yesterday but the delivery never came.",
            "Terrible service, my parcel is lost and nobody answers my emails!",
        ),
        "es": (
            "¿Dónde está mi paquete? El seguimiento no ha cambiado en tres días.",
            "Mi pedido debía llegar ayer pero la entrega nunca llegó.",
        ),
        "de": (
            "Wo ist mein Paket? Die Sendungsverfolgung hat sich seit drei Tagen nicht geändert.",
            "Meine Bestellung sollte gestern ankommen, aber die Lieferung kam nie.",
        ),
        "fr": (
            "Où est mon colis ? Le suivi n'a pas changé depuis trois jours.",
            "Ma commande devait arriver hier mais la livraison n'est jamais venue.",
        ),
    },
    "account": {
        "en": (
            "I can't log in to my account, the password reset email never arrives.",
            "How do I change the email address on my account?",
            "My account got locked again, this is so frustrating.",
        ),
        "es": ("No puedo iniciar sesión en mi cuenta, no me llega el correo para restablecer la contraseña.",),
        "de": ("Ich kann mich nicht in mein Konto einloggen, die E-Mail zum Zurücksetzen des Passworts kommt nie an.",),
        "fr": (
            "Je n'arrive pas à me connecter à mon compte, l'e-mail de réinitialisation du mot de passe n'arrive pas.",
        ),
    },
    "technical_issue": {
        "en": (
            "The app crashes every time I open the settings page.",
            "I get an error 500 when I try to upload a file.",
            "Your app is broken again, nothing works since the last update!",
        ),
        "es": ("La aplicación se cierra cada vez que abro la configuración.",),
        "de": ("Die App stürzt jedes Mal ab, wenn ich die Einstellungen öffne.",),
        "fr": ("L'application plante chaque fois que j'ouvre les paramètres.",),
    },
    "refund": {
        "en": (
            "I returned the shoes two weeks ago, when will I get my refund?",
            "I would like a refund for order #48213, the item arrived damaged.",
            "Still no refund after a month, this is a scam!",
        ),
        "es": ("Devolví los zapatos hace dos semanas, ¿cuándo recibiré mi reembolso?",),
        "de": ("Ich habe die Schuhe vor zwei Wochen zurückgeschickt, wann bekomme ich meine Erstattung?",),
        "fr": ("J'ai renvoyé les chaussures il y a deux semaines, quand serai-je remboursé ?",),
    },
    "product_info": {
        "en": (
            "Does the premium plan include international shipping?",
            "Is the blue jacket available in size M?",
            "What is the difference between the basic and the pro version?",
        ),
        "es": ("¿El plan premium incluye envío internacional?",),
        "de": ("Ist die blaue Jacke in Größe M verfügbar?",),
        "fr": ("Est-ce que la veste bleue est disponible en taille M ?",),
    },
}
TOPIC_WEIGHTS = (
    ("billing", 18),
    ("delivery", 24),
    ("account", 16),
    ("technical_issue", 14),
    ("refund", 14),
    ("product_info", 14),
)

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "greeting": {
        "en": ("Hi", "Hello there", "Good morning"),
        "es": ("Hola", "Buenos días"),
        "de": ("Hallo", "Guten Tag"),
        "fr": ("Bonjour", "Salut"),
    },
    "thanks": {
        "en": ("Thanks, that was really helpful!", "Great, thank you so much.", "ok thanks"),
        "es": ("¡Gracias, muy amable!",),
        "de": ("Danke, das hat geholfen!",),
        "fr": ("Merci beaucoup, c'est parfait !",),
    },
    "goodbye": {
        "en": ("Bye!", "Have a nice day."),
        "es": ("Adiós",),
        "de": ("Tschüss",),
        "fr": ("Au revoir",),
    },
    "ask_for_human": {
        "en": ("Can I talk to a human agent please?", "I want to speak to a real person."),
        "es": ("Quiero hablar con una persona, por favor.",),
        "de": ("Kann ich bitte mit einem Mitarbeiter sprechen?",),
        "fr": ("Je voudrais parler à un conseiller, s'il vous plaît.",),
    },
    "still_waiting": {
        "en": ("Hello? Is anyone there?", "I'm still waiting..."),
        "es": ("¿Hola? ¿Hay alguien?",),
        "de": ("Hallo? Ist da jemand?",),
        "fr": ("Allô ? Il y a quelqu'un ?",),
    },
    "deny": {
        "en": ("No, that's not what I asked.", "No, that doesn't help."),
        "es": ("No, eso no me ayuda.",),
        "de": ("Nein, das hilft mir nicht.",),
        "fr": ("Non, ça ne m'aide pas.",),
    },
    "affirm": {
        "en": ("Yes, that works.", "Yes please."),
        "es": ("Sí, perfecto.",),
        "de": ("Ja, passt.",),
        "fr": ("Oui, ça marche.",),
    },
    "cancel": {
        "en": ("Actually, please cancel my order.", "Never mind, cancel it."),
        "es": ("Mejor cancele mi pedido.",),
        "de": ("Bitte stornieren Sie meine Bestellung.",),
        "fr": ("Finalement, annulez ma commande.",),
    },
    "contact": {
        "en": (
            "You can reach me at {email} or {phone}.",
            "My card ending is on file, the number is {card}.",
        ),
        "es": ("Mi correo es {email}.",),
        "de": ("Meine E-Mail ist {email}.",),
        "fr": ("Mon e-mail est {email}.",),
    },
}
BOT_REPLIES: dict[str, dict[str, str]] = {
    "answer": {
        "en": "I've looked into it: {detail}. Is there anything else I can help with?",
        "es": "Lo he revisado: {detail}. ¿Puedo ayudarle en algo más?",
        "de": "Ich habe nachgesehen: {detail}. Kann ich sonst noch helfen?",
        "fr": "J'ai vérifié : {detail}. Puis-je vous aider avec autre chose ?",
    },
    "fallback": {
        "en": "Sorry, I didn't understand that. Could you rephrase?",
        "es": "Lo siento, no he entendido. ¿Puede reformularlo?",
        "de": "Entschuldigung, das habe ich nicht verstanden. Können Sie es anders formulieren?",
        "fr": "Désolé, je n'ai pas compris. Pouvez-vous reformuler ?",
    },
    "handoff": {
        "en": "I'm connecting you with a member of our support team.",
        "es": "Le paso con un miembro de nuestro equipo de soporte.",
        "de": "Ich verbinde Sie mit unserem Support-Team.",
        "fr": "Je vous mets en relation avec notre équipe support.",
    },
    "goodbye": {
        "en": "You're welcome, have a great day!",
        "es": "¡De nada, que tenga un buen día!",
        "de": "Gern geschehen, einen schönen Tag noch!",
        "fr": "Avec plaisir, bonne journée !",
    },
}
DETAILS = {
    "billing": "the duplicate charge will be reversed within 5 business days",
    "delivery": "your parcel is at the local depot and will be delivered tomorrow",
    "account": "I have sent a new password reset link",
    "technical_issue": "this is a known bug and a fix is being rolled out",
    "refund": "your refund was issued and should appear on your statement within a week",
    "product_info": "yes, it is included and available",
}
AGENT_REPLIES = {
    "en": (
        "Hi, this is {agent} from support. I'm sorry about the trouble, let me take a look.",
        "I've fixed it on our side, you should see the change now.",
    ),
    "es": (
        "Hola, soy {agent} del equipo de soporte. Lamento las molestias, lo reviso ahora.",
        "Ya está solucionado, debería ver el cambio.",
    ),
    "de": (
        "Hallo, hier ist {agent} vom Support. Das tut mir leid, ich sehe es mir an.",
        "Ich habe es behoben, Sie sollten die Änderung jetzt sehen.",
    ),
    "fr": (
        "Bonjour, ici {agent} du support. Désolé pour le désagrément, je regarde.",
        "C'est corrigé de notre côté, vous devriez voir le changement.",
    ),
}
AGENTS = ("Maria", "Tom", "Aisha", "Lukas", "Chloé", "Diego")


@dataclass(frozen=True)
class DemoSummary:
    folder: Path
    first_day: date
    last_day: date
    conversations: int
    messages: int
    malformed: int


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in weighted], weights=[w for _, w in weighted])[0]


def _user_for(rng: random.Random, day_number: int, index: int, day: date) -> str:
    """Mostly users seen before (a few loyal ones very often), some brand new ones each day."""
    if day_number == 0 or rng.random() < 0.3:
        return f"u-{day:%Y%m%d}-{index:04d}"
    back = int(rng.paretovariate(0.6)) % (day_number + 1)
    past = day - timedelta(days=max(back, 1))
    return f"u-{past:%Y%m%d}-{rng.randrange(40):04d}"


def _conversation(rng: random.Random, day: date, index: int, day_number: int) -> tuple[dict, list[dict]]:
    language = _pick(rng, LANGUAGES)
    channel = _pick(rng, CHANNELS)
    topic = _pick(rng, TOPIC_WEIGHTS)
    hour = rng.choices(range(24), weights=HOURLY_WEIGHT)[0]
    started = datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc) + timedelta(seconds=rng.randrange(3600))
    if index == 0:  # every day has a late-night conversation that runs past midnight
        started = datetime(day.year, day.month, day.day, 23, 52, tzinfo=timezone.utc)
    conversation_id = f"c-{day:%Y%m%d}-{index:04d}"
    slow = channel == "email"
    clock = started
    messages: list[dict] = []

    def say(role: str, text: str, delay: float) -> None:
        nonlocal clock
        clock = clock + timedelta(seconds=delay)
        messages.append(
            {
                "message_id": f"{conversation_id}-{len(messages):02d}",
                "conversation_id": conversation_id,
                "role": role,
                "text": text,
                "sent_at": clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            }
        )

    def phrase(kind: str) -> str:
        return rng.choice(PHRASES[kind][language])

    def bot(kind: str) -> None:
        text = BOT_REPLIES[kind][language].format(detail=DETAILS[topic])
        say("assistant", text, rng.uniform(0.6, 3.5))

    if rng.random() < 0.4:
        say("user", phrase("greeting"), 0)
    openings = OPENINGS[topic][language]
    angry = language == "en" and rng.random() < 0.25
    say(
        "user",
        openings[-1] if angry else rng.choice(openings[:-1] or openings),
        0 if not messages else rng.uniform(3, 20),
    )
    if rng.random() < 0.08:
        user = rng.randrange(1000)
        say(
            "user",
            phrase("contact").format(
                email=f"customer{user}@example.com",
                phone=f"+1 415 555 {user:04d}",
                card="4111 1111 1111 1111",
            ),
            rng.uniform(5, 30),
        )
    if rng.random() < 0.12:
        bot("fallback")
        say("user", rng.choice(openings), rng.uniform(8, 40))
    outcome = rng.choices(("resolved", "escalated", "abandoned", "open"), weights=(55, 20, 15, 10))[0]
    if outcome == "escalated" or angry and rng.random() < 0.5:
        outcome = "escalated"
        say("user", phrase("ask_for_human"), rng.uniform(5, 30))
        bot("handoff")
        say("system", "Conversation assigned to the support queue.", 0.2)
        if rng.random() < 0.3:
            say("user", phrase("still_waiting"), rng.uniform(60, 240))
        wait = rng.uniform(3600, 6 * 3600) if slow else rng.lognormvariate(5.0, 0.8)
        first, second = AGENT_REPLIES[language]
        say("agent", first.format(agent=rng.choice(AGENTS)), wait)
        say("agent", second, rng.uniform(60, 600))
        say("user", phrase("thanks"), rng.uniform(20, 120))
    elif outcome == "abandoned":
        bot("answer")
        if rng.random() < 0.5:
            say("user", phrase("deny"), rng.uniform(10, 60))
            bot("fallback")
    elif outcome == "resolved":
        bot("answer")
        if rng.random() < 0.15:
            say("user", phrase("cancel"), rng.uniform(10, 60))
            bot("answer")
        say("user", phrase("affirm") if rng.random() < 0.2 else phrase("thanks"), rng.uniform(5, 60))
        bot("goodbye")
        if rng.random() < 0.3:
            say("user", phrase("goodbye"), rng.uniform(2, 10))
    else:  # still open: the user's last question waits for an answer
        bot("answer")
        say("user", rng.choice(openings), rng.uniform(10, 90))
    ended = None if outcome == "open" else messages[-1]["sent_at"]
    conversation = {
        "conversation_id": conversation_id,
        "user_id": _user_for(rng, day_number, index, day),
        "channel": channel,
        "started_at": messages[0]["sent_at"],
        "ended_at": ended,
        "status": outcome,
    }
    return conversation, messages


def _malformed(rng: random.Random, day: date) -> Iterator[tuple[str, str]]:
    """A handful of broken records a real export contains, as (entity, line) pairs."""
    stamp = f"{day.isoformat()}T12:00:00Z"
    yield (
        "messages",
        json.dumps(
            {
                "message_id": None,
                "conversation_id": f"c-{day:%Y%m%d}-0001",
                "role": "user",
                "text": "lost id",
                "sent_at": stamp,
            }
        ),
    )
    yield (
        "messages",
        json.dumps(
            {
                "message_id": f"x-{day:%Y%m%d}-1",
                "conversation_id": f"c-{day:%Y%m%d}-0001",
                "role": "robot",
                "text": "unknown role",
                "sent_at": stamp,
            }
        ),
    )
    if rng.random() < 0.5:
        yield (
            "conversations",
            json.dumps(
                {
                    "conversation_id": f"x-{day:%Y%m%d}",
                    "user_id": "u-x",
                    "channel": "web",
                    "started_at": "yesterday-ish",
                    "status": "open",
                }
            ),
        )


def generate_day(day: date, per_day: int = 120, seed: int = 7) -> tuple[list[dict], list[dict], list[tuple[str, str]]]:
    """Conversations, messages and malformed lines of one day, the same for the same (day, seed)."""
    rng = random.Random(f"{seed}:{day.isoformat()}")
    day_number = (day - EPOCH).days
    weekend = day.weekday() >= 5
    count = max(1, int(per_day * (0.6 if weekend else 1.0) * rng.uniform(0.85, 1.15)))
    conversations, messages = [], []
    for index in range(count):
        conversation, lines = _conversation(rng, day, index, day_number)
        conversations.append(conversation)
        messages.extend(lines)
    return conversations, messages, list(_malformed(rng, day))


def write_demo(folder: Path, last_day: date, days: int, per_day: int = 120, seed: int = 7) -> DemoSummary:
    """Write `days` days ending on `last_day` as one file per entity per day (by the record's own day)."""
    folder.mkdir(parents=True, exist_ok=True)
    first_day = last_day - timedelta(days=days - 1)
    files: dict[Path, list[str]] = {}
    totals = {"conversations": 0, "messages": 0, "malformed": 0}
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        conversations, messages, broken = generate_day(day, per_day, seed)
        for entity, rows, time_field in (
            ("conversations", conversations, "started_at"),
            ("messages", messages, "sent_at"),
        ):
            for row in rows:
                path = folder / f"{entity}-{row[time_field][:10]}.jsonl"
                files.setdefault(path, []).append(json.dumps(row, ensure_ascii=False))
            totals[entity] += len(rows)
        for entity, line in broken:
            files.setdefault(folder / f"{entity}-{day.isoformat()}.jsonl", []).append(line)
        totals["malformed"] += len(broken)
    for path, lines in files.items():
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return DemoSummary(
        folder,
        first_day,
        last_day,
        totals["conversations"],
        totals["messages"],
        totals["malformed"],
    )
