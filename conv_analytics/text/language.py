"""Language identification without a downloaded model.

The writing system decides most non-Latin languages outright. Within a script shared by
several languages (Latin, Cyrillic, Arabic) each word votes for the languages whose spaCy
stop-word list (plus a few chat words: greetings, thanks) contains it, its vote split between
them, and distinctive letters (ñ, ß, ã, ł ...) add small votes. Too little or too even evidence
gives "und".
"""

from __future__ import annotations

import bisect
import re
from functools import cache

from conv_analytics.text.spacy_data import lookup_table, stop_words

UNDETERMINED = "und"

# Only the start of a long text is inspected; language does not change mid-message often
# enough to justify scanning a megabyte.
_SAMPLE_CHARS = 2000

# Languages scored by words, grouped by the script they are written in.
SCRIPT_LANGUAGES: dict[str, tuple[str, ...]] = {
    "Latin": (
        "en", "es", "de", "fr", "it", "pt", "nl", "sv", "da", "nb", "fi", "pl", "cs", "ro",
        "tr", "id", "ca", "hu",
    ),
    "Cyrillic": ("ru", "uk", "bg", "sr", "mk"),
    "Arabic": ("ar", "fa", "ur"),
    "Devanagari": ("hi", "mr", "ne"),
}  # fmt: skip

# Scripts used by (practically) one language in chat text.
_SCRIPT_LANGUAGE = {
    "Greek": "el", "Armenian": "hy", "Hebrew": "he", "Bengali": "bn", "Gurmukhi": "pa",
    "Gujarati": "gu", "Tamil": "ta", "Telugu": "te", "Kannada": "kn", "Malayalam": "ml",
    "Sinhala": "si", "Thai": "th", "Lao": "lo", "Tibetan": "bo", "Myanmar": "my",
    "Georgian": "ka", "Hangul": "ko", "Ethiopic": "am", "Khmer": "km", "Kana": "ja", "Han": "zh",
}  # fmt: skip

# (first code point, last code point, script), sorted by first code point.
_SCRIPT_RANGES = sorted(
    [
        (0x0041, 0x024F, "Latin"), (0x1E00, 0x1EFF, "Latin"), (0x0370, 0x03FF, "Greek"),
        (0x1F00, 0x1FFF, "Greek"), (0x0400, 0x052F, "Cyrillic"), (0x0530, 0x058F, "Armenian"),
        (0x0590, 0x05FF, "Hebrew"), (0x0600, 0x06FF, "Arabic"), (0x0750, 0x077F, "Arabic"),
        (0xFB50, 0xFDFF, "Arabic"), (0xFE70, 0xFEFF, "Arabic"), (0x0900, 0x097F, "Devanagari"),
        (0x0980, 0x09FF, "Bengali"), (0x0A00, 0x0A7F, "Gurmukhi"), (0x0A80, 0x0AFF, "Gujarati"),
        (0x0B80, 0x0BFF, "Tamil"), (0x0C00, 0x0C7F, "Telugu"), (0x0C80, 0x0CFF, "Kannada"),
        (0x0D00, 0x0D7F, "Malayalam"), (0x0D80, 0x0DFF, "Sinhala"), (0x0E00, 0x0E7F, "Thai"),
        (0x0E80, 0x0EFF, "Lao"), (0x0F00, 0x0FFF, "Tibetan"), (0x1000, 0x109F, "Myanmar"),
        (0x10A0, 0x10FF, "Georgian"), (0x1100, 0x11FF, "Hangul"), (0x1200, 0x137F, "Ethiopic"),
        (0x1780, 0x17FF, "Khmer"), (0x3040, 0x30FF, "Kana"), (0x3130, 0x318F, "Hangul"),
        (0x3400, 0x4DBF, "Han"), (0x4E00, 0x9FFF, "Han"), (0xAC00, 0xD7AF, "Hangul"),
        (0xF900, 0xFAFF, "Han"), (0xFF66, 0xFF9F, "Kana"), (0x20000, 0x2FFFF, "Han"),
    ]
)  # fmt: skip
_RANGE_STARTS = [r[0] for r in _SCRIPT_RANGES]

# Everyday chat words that stop-word lists leave out (greetings, thanks, yes/no, apologies,
# requests) and customer-support vocabulary (order, delivery, refund, account, card ...).
_CHAT_WORDS: dict[str, str] = {
    "en": "hello hi hey thanks thank please yes yeah ok okay sorry bye goodbye hours order "
    "account payment refund n't don't can't won't isn't doesn't didn't i'm i've i'd i'll "
    "it's that's what's there's you're we're they're let's oh wow hmm yep nope cool",
    "es": "hola gracias favor sí vale adiós buenos buenas días perdón ayuda quiero quisiera "
    "necesito puedo pedido envío entrega reembolso pago cuenta tarjeta correo factura "
    "suscripción cancelar problema precio devolución dinero contraseña todavía",
    "de": "hallo danke bitte ja nein tschüss guten morgen tag entschuldigung hilfe möchte "
    "brauche bestellung lieferung versand rückerstattung zahlung konto karte rechnung abo "
    "stornieren preis rücksendung geld passwort angekommen",
    "fr": "bonjour merci oui salut bonsoir revoir désolé aide voudrais veux besoin commande "
    "livraison remboursement paiement compte carte courriel facture abonnement annuler "
    "problème prix retour argent reçu",
    "it": "ciao grazie prego sì buongiorno buonasera arrivederci scusa aiuto vorrei voglio "
    "posso potete ordine consegna spedizione rimborso pagamento conto carta fattura "
    "abbonamento annullare problema prezzo soldi",
    "pt": "olá obrigado obrigada sim não tchau bom dia desculpe ajuda gostaria quero preciso "
    "pedido encomenda entrega envio reembolso pagamento conta cartão fatura assinatura "
    "cancelar problema preço devolução dinheiro senha",
    "nl": "hallo dank bedankt alstublieft graag ja nee doei goedemorgen sorry hulp bestelling "
    "levering terugbetaling betaling rekening factuur abonnement annuleren",
    "ru": "привет спасибо пожалуйста здравствуйте да нет",
    "uk": "привіт дякую будь ласка так ні",
}

# Letters that point to particular languages: {letter: {language: vote}}; each letter
# votes once per text.
_LETTER_VOTES: dict[str, dict[str, float]] = {
    "ñ": {"es": 1.0}, "¿": {"es": 1.0}, "¡": {"es": 1.0},
    "ß": {"de": 1.0}, "ä": {"de": 0.5, "sv": 0.5, "fi": 0.5}, "ü": {"de": 0.5, "tr": 0.5},
    "ö": {"de": 0.3, "sv": 0.3, "fi": 0.3, "tr": 0.3, "hu": 0.3},
    "ã": {"pt": 1.0}, "õ": {"pt": 1.0}, "ç": {"fr": 0.4, "pt": 0.4, "ca": 0.4, "tr": 0.2},
    "œ": {"fr": 1.0}, "ê": {"fr": 0.5, "pt": 0.5}, "â": {"fr": 0.5, "pt": 0.3, "ro": 0.3},
    "î": {"fr": 0.5, "ro": 0.5}, "û": {"fr": 0.5}, "ë": {"fr": 0.3, "nl": 0.3},
    "è": {"fr": 0.5, "it": 0.5, "ca": 0.3}, "à": {"fr": 0.3, "it": 0.3, "pt": 0.3, "ca": 0.3},
    "ì": {"it": 0.5}, "ò": {"it": 0.5, "ca": 0.3}, "ù": {"it": 0.3, "fr": 0.3},
    "å": {"sv": 0.5, "da": 0.5, "nb": 0.5}, "æ": {"da": 0.7, "nb": 0.7}, "ø": {"da": 0.7, "nb": 0.7},
    "ł": {"pl": 1.0}, "ą": {"pl": 1.0}, "ę": {"pl": 1.0}, "ś": {"pl": 0.7}, "ż": {"pl": 1.0},
    "ř": {"cs": 1.0}, "ě": {"cs": 1.0}, "ů": {"cs": 1.0},
    "ș": {"ro": 1.0}, "ț": {"ro": 1.0}, "ă": {"ro": 1.0},
    "ğ": {"tr": 1.0}, "ş": {"tr": 0.7, "ro": 0.3}, "ı": {"tr": 1.0}, "ő": {"hu": 1.0}, "ű": {"hu": 1.0},
    "і": {"uk": 0.7}, "ї": {"uk": 1.0}, "є": {"uk": 1.0}, "ґ": {"uk": 1.0}, "ы": {"ru": 0.5},
    "ё": {"ru": 0.5}, "э": {"ru": 0.5}, "ђ": {"sr": 1.0}, "ћ": {"sr": 1.0}, "ѓ": {"mk": 1.0},
    "ќ": {"mk": 1.0}, "ѕ": {"mk": 1.0},
    "پ": {"fa": 0.5, "ur": 0.3}, "چ": {"fa": 0.5, "ur": 0.3}, "ژ": {"fa": 0.7}, "گ": {"fa": 0.5, "ur": 0.3},
    "ٹ": {"ur": 1.0}, "ڈ": {"ur": 1.0}, "ڑ": {"ur": 1.0}, "ں": {"ur": 1.0}, "ے": {"ur": 1.0},
}  # fmt: skip

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_LETTER = re.compile(r"[^\W\d_]")
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_NON_LATIN_LETTER = re.compile(r"[^\W\d_A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_CHUNK_CACHE_LIMIT = 500_000
_CACHED_CHUNK_CHARS = 64
_EPSILON = 1e-6  # votes are sums of 1/sqrt(n): compare thresholds without rounding noise

# Evidence rules, tuned on DailyDialog/MultiWOZ/CLINC/Banking77 train and validation English
# text and a handful of hand-written non-English sentences (see the tests).
MIN_SCORE = 1.0
MIN_MARGIN = 0.5
SHARED_VOTE_EXPONENT = 0.5
LEXICON_VOTE = 0.5


def _english_lexicon() -> frozenset[str]:
    """Word forms and lemmas from spacy-lookups-data's English lemma table (67k, ~0.15 s).

    Stop words alone leave many English chat messages undecided ("set a timer for me");
    the product's traffic is mostly English, so English gets this extra vocabulary.
    """
    table = lookup_table("en")
    words = {w.lower() for pair in table.items() for w in pair}
    return frozenset(w for w in words if len(w) > 1 and w.isalpha())


class _ScriptModel:
    """Votes of known words and letters for the languages of one script."""

    def __init__(self, script: str) -> None:
        self.languages = SCRIPT_LANGUAGES[script]
        column = {lang: j for j, lang in enumerate(self.languages)}
        members: dict[str, list[str]] = {}
        for lang in self.languages:
            for word in stop_words(lang) | set(_CHAT_WORDS.get(lang, "").split()):
                # One-letter words are too ambiguous (and mostly clitics cut off at an
                # apostrophe).
                if len(word) > 1:
                    members.setdefault(word, []).append(lang)
        lexicon = _english_lexicon() if script == "Latin" else frozenset()
        for word in lexicon.intersection(members):
            # Stop-word lists hold English words ("like" for Norwegian, "come" and "fine" for
            # Italian): an English word shares its vote with English.
            if "en" not in members[word]:
                members[word].append("en")
        # A word shared by n languages gives each 1/sqrt(n).
        rows: list[dict[str, float]] = [
            {lang: len(langs) ** -SHARED_VOTE_EXPONENT for lang in langs} for langs in members.values()
        ]
        keys = list(members)
        for word in lexicon.difference(members):
            keys.append(word)
            rows.append({"en": LEXICON_VOTE})
        self.words = {
            key: tuple((column[lang], vote) for lang, vote in votes.items())
            for key, votes in zip(keys, rows, strict=True)
        }
        self.letters = {
            letter: tuple((column[lang], vote) for lang, vote in votes.items() if lang in column)
            for letter, votes in _LETTER_VOTES.items()
            if any(lang in column for lang in votes)
        }
        self.chunks: dict[str, tuple[tuple[int, float], ...]] = {}

    def chunk_votes(self, chunk: str) -> tuple[tuple[int, float], ...]:
        """(language column, vote) pairs of the words in a lowercase whitespace-free chunk.

        Memoised: chat repeats its chunks, and finding words is the costly step.
        """
        votes = self.chunks.get(chunk)
        if votes is None:
            words = self.words
            votes = tuple(v for w in _WORD.findall(chunk) for v in words.get(w, ()))
            if len(chunk) <= _CACHED_CHUNK_CHARS:
                if len(self.chunks) >= _CHUNK_CACHE_LIMIT:
                    self.chunks.clear()
                self.chunks[chunk] = votes
        return votes

    def classify(self, lowered: str) -> str:
        scores = [0.0] * len(self.languages)
        for chunk in lowered.split():
            for column, vote in self.chunk_votes(chunk):
                scores[column] += vote
        if not lowered.isascii():
            for letter in set(lowered).intersection(self.letters):
                for column, vote in self.letters[letter]:
                    scores[column] += vote
        best = max(range(len(scores)), key=scores.__getitem__)
        top = scores[best]
        scores[best] = -1.0
        if top < MIN_SCORE - _EPSILON or top - max(scores) < MIN_MARGIN - _EPSILON:
            return UNDETERMINED
        return self.languages[best]


@cache
def _script_model(script: str) -> _ScriptModel:
    return _ScriptModel(script)


def dominant_script(text: str) -> str | None:
    """The script most letters of the text belong to, or None when there are no letters."""
    if not _NON_LATIN_LETTER.search(text):
        return "Latin" if _LETTER.search(text) else None
    counts: dict[str, int] = {"Latin": len(_LATIN_LETTER.findall(text))}
    for ch in _NON_LATIN_LETTER.findall(text):
        code = ord(ch)
        i = bisect.bisect_right(_RANGE_STARTS, code) - 1
        if i >= 0 and code <= _SCRIPT_RANGES[i][1]:
            script = _SCRIPT_RANGES[i][2]
            counts[script] = counts.get(script, 0) + 1
    # Japanese mixes kana with Han characters; any real share of kana means Japanese.
    if counts.get("Kana", 0) * 5 >= counts.get("Han", 0) > 0:
        return "Kana"
    script = max(counts, key=counts.__getitem__)
    return script if counts[script] else None


def detect_language(text: str | None) -> str:
    """ISO 639-1 code of the text's language, or "und" when it cannot be told."""
    if not text:
        return UNDETERMINED
    sample = text[:_SAMPLE_CHARS]
    script = dominant_script(sample)
    if script is None:
        return UNDETERMINED
    if script in _SCRIPT_LANGUAGE:
        return _SCRIPT_LANGUAGE[script]
    if script not in SCRIPT_LANGUAGES:
        return UNDETERMINED
    return _script_model(script).classify(sample.lower())
