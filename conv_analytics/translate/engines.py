"""Translation engines behind one interface: a batch of texts in one language in, English out.

Apertium (Debian's packages, offline) as a local pipe (`apertium -u spa-eng`, one process per
batch) or as its HTTP server apertium-apy; LibreTranslate's HTTP API for teams that run it
with their own models. Each engine is built from parameters only; it names the setting that
chose it when it fails, so the message says what to fix.
"""

from __future__ import annotations

import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cached_property

import requests

from conv_analytics.config import Config
from conv_analytics.errors import PlatformError

ENGLISH = "en"
# Apertium and apy name languages by ISO 639-3; detection gives ISO 639-1. Serbian, Croatian,
# Bosnian (and the old "sh") share Apertium's Serbo-Croatian pair.
ISO639_3 = {
    "es": "spa", "ca": "cat", "gl": "glg", "eu": "eus", "is": "isl", "mk": "mkd", "eo": "epo",
    "sr": "hbs", "hr": "hbs", "bs": "hbs", "sh": "hbs",
    "fr": "fra", "de": "deu", "it": "ita", "pt": "por", "nl": "nld", "ro": "ron", "oc": "oci",
}  # fmt: skip

# Texts of one batch travel through Apertium as one document, one paragraph per text, ended by
# a private-use character and a full stop. The character passes through every pair, the pipe
# and apertium-apy untouched (apy turns control characters such as RS into spaces); the full
# stop and blank lines end the sentence, so no word moves between texts (with bare newlines,
# "nunca más" + "Bueno." came out "never Better" + ".") and each text translates as it does alone.
RECORD_SEPARATOR = "\ue0ff"
SEPARATOR = f"\n\n{RECORD_SEPARATOR}.\n\n"
# Apertium's marks: * unknown word, @ untranslated lemma, # generation error. The pipe's -u
# drops all three; apy's markUnknown=no only the *, so apy gets the text's own * @ # as
# private-use stand-ins, drops the marks from its answer and puts the characters back.
_MARKS = "*@#"
_STAND_INS = [chr(0xE010 + i) for i in range(len(_MARKS))]
_HIDE_MARKS = str.maketrans({**dict.fromkeys(_STAND_INS, " "), **dict(zip(_MARKS, _STAND_INS, strict=True))})
_DROP_MARKS = str.maketrans("", "", _MARKS)
_SHOW_MARKS = str.maketrans(dict(zip(_STAND_INS, _MARKS, strict=True)))

TRANSLATOR_SETTING = Config.translator.env
URL_SETTING = Config.translator_url.env
API_KEY_SETTING = Config.translator_api_key.env


class TranslatorError(PlatformError):
    """The translator is missing, down, slow or refused the request; the message names the setting."""


class Translator(ABC):
    """One engine. `translate(texts, language)` gives English texts, or None without that pair."""

    #: Name in cache keys: engines with this name give the same translation of a text.
    name: str

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout

    @abstractmethod
    def _pair_names(self) -> frozenset[str]:
        """The engine's own names of its pairs into English."""

    @abstractmethod
    def _candidates(self, language: str) -> list[str]:
        """The names the engine could give a pair from `language` (ISO 639-1) into English."""

    @abstractmethod
    def _translate(self, texts: list[str], pair: str) -> list[str]:
        """One request or process for the whole batch."""

    @cached_property
    def pairs(self) -> frozenset[str]:
        """Pair names into English, asked once per translator."""
        return self._pair_names()

    def pair(self, language: str) -> str | None:
        """The engine's pair from `language` into English, or None when it has none."""
        return next((name for name in self._candidates(language) if name in self.pairs), None)

    def translate(self, texts: Sequence[str], language: str) -> list[str] | None:
        """English translations in the same order, or None when there is no pair for `language`."""
        pair = self.pair(language)
        if pair is None:
            return None
        if not texts:
            return []
        translated = self._translate(list(texts), pair)
        if len(translated) != len(texts):
            raise TranslatorError(f"{self.name} returned {len(translated)} translations for {len(texts)} texts")
        return translated


def translate_separated(texts: list[str], run: Callable[[str], str]) -> list[str]:
    """Translate a batch as one document, one paragraph per text; one call per text when a
    pair drops or duplicates a separator (never seen, but texts must not shift)."""
    clean = [t.replace(RECORD_SEPARATOR, " ").replace("\x00", " ") for t in texts]
    if len(clean) > 1:
        parts = run(SEPARATOR.join(clean)).split(RECORD_SEPARATOR)
        if len(parts) == len(clean):
            return [parts[0].strip()] + [p.removeprefix(".").strip() for p in parts[1:]]
    return [run(t).strip() for t in clean]


class ApertiumPipe(Translator):
    """`apertium -u <pair>`, one process per batch (installed pairs from `apertium -l`)."""

    name = "apertium"

    def __init__(self, timeout: float = 120.0, command: str = "apertium") -> None:
        super().__init__(timeout)
        self.command = command

    def _candidates(self, language: str) -> list[str]:
        iso3 = ISO639_3.get(language, language)
        return [f"{iso3}-eng", f"{language}-en", f"{iso3}-en", f"{language}-eng"]

    def _run(self, arguments: list[str], text: str = "") -> str:
        what = " ".join([self.command, *arguments])
        try:
            done = subprocess.run(
                [self.command, *arguments],
                input=text.encode(),
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise TranslatorError(
                f"{TRANSLATOR_SETTING}=apertium without {URL_SETTING} runs the `{self.command}` command, which is "
                "not installed: install Debian's apertium and apertium-eng-spa (scripts/system-deps), "
                f"set {URL_SETTING} to an apertium-apy server, or set {TRANSLATOR_SETTING}=none"
            ) from None
        except subprocess.TimeoutExpired:
            raise TranslatorError(
                f"`{what}` took longer than {self.timeout:.0f} s ({TRANSLATOR_SETTING}=apertium)"
            ) from None
        if done.returncode != 0:
            error = done.stderr.decode(errors="replace").strip()[-500:]
            raise TranslatorError(f"`{what}` failed ({TRANSLATOR_SETTING}=apertium): {error}")
        return done.stdout.decode(errors="replace")

    def _pair_names(self) -> frozenset[str]:
        return frozenset(line.strip() for line in self._run(["-l"]).splitlines() if line.strip())

    def _translate(self, texts: list[str], pair: str) -> list[str]:
        return translate_separated(texts, lambda text: self._run(["-u", pair], text))


class _HttpTranslator(Translator):
    """Shared HTTP handling: one session, a timeout, failures that name the URL setting."""

    def __init__(self, url: str, timeout: float, session: requests.Session | None) -> None:
        super().__init__(timeout)
        self.url = url.rstrip("/")
        self.session = session or requests.Session()

    def _refused(self, response: requests.Response) -> TranslatorError:
        return TranslatorError(
            f"{self.name} at {self.url} answered {response.status_code} to {response.request.method} "
            f"{response.request.path_url.split('?')[0]}: {response.text[:300]} ({URL_SETTING})"
        )

    def _request(self, method: str, path: str, **kwargs: object) -> requests.Response:
        try:
            return self.session.request(method, self.url + path, timeout=self.timeout, **kwargs)  # type: ignore[arg-type]
        except requests.Timeout:
            raise TranslatorError(
                f"{self.name} at {self.url} did not answer {method} {path} within {self.timeout:.0f} s ({URL_SETTING})"
            ) from None
        except requests.RequestException as exc:
            raise TranslatorError(
                f"{self.name} at {self.url} cannot be reached ({type(exc).__name__}): check {URL_SETTING} "
                "and that the server runs"
            ) from None


def split_long(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, cut after a sentence end, else at a space."""
    pieces = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind(end) for end in (". ", "? ", "! ", "\n"))
        if cut <= 0:
            cut = window.rfind(" ")
        cut = cut + 1 if cut > 0 else limit
        pieces.append(text[:cut])
        text = text[cut:]
    return [*pieces, text]


class ApertiumServer(_HttpTranslator):
    """apertium-apy: `GET /listPairs`, `POST /translate` (q, langpair), one request per batch.

    apy 0.11 loses the end of a paragraph longer than about 40 KB (it answers 200 with 47,579
    of 122,000 characters), so long texts travel as several paragraphs, cut between sentences.
    """

    MAX_PARAGRAPH_CHARS = 8000

    name = "apertium"

    def __init__(self, url: str, timeout: float = 120.0, session: requests.Session | None = None) -> None:
        super().__init__(url, timeout, session)

    def _candidates(self, language: str) -> list[str]:
        return [f"{ISO639_3.get(language, language)}|eng"]

    def _pair_names(self) -> frozenset[str]:
        response = self._request("GET", "/listPairs")
        if response.status_code != 200:
            raise self._refused(response)
        pairs = response.json()["responseData"]
        return frozenset(f"{p['sourceLanguage']}|{p['targetLanguage']}" for p in pairs)

    def _post(self, text: str, pair: str) -> str:
        data = {"q": text.translate(_HIDE_MARKS), "langpair": pair, "markUnknown": "no"}
        response = self._request("POST", "/translate", data=data)
        if response.status_code != 200:
            raise self._refused(response)
        return response.json()["responseData"]["translatedText"].translate(_DROP_MARKS).translate(_SHOW_MARKS)

    def _translate(self, texts: list[str], pair: str) -> list[str]:
        pieces = [split_long(text, self.MAX_PARAGRAPH_CHARS) for text in texts]
        english = iter(translate_separated([p for parts in pieces for p in parts], lambda text: self._post(text, pair)))
        return [" ".join(next(english) for _ in parts) for parts in pieces]


class LibreTranslate(_HttpTranslator):
    """LibreTranslate: `GET /languages`, `POST /translate` with a list of texts; api_key optional."""

    name = "libretranslate"

    def __init__(
        self, url: str, api_key: str | None = None, timeout: float = 120.0, session: requests.Session | None = None
    ) -> None:
        super().__init__(url, timeout, session)
        self._api_key = api_key or None

    def __repr__(self) -> str:  # never shows the key
        return f"LibreTranslate(url={self.url!r}, api_key={'***' if self._api_key else None})"

    def _candidates(self, language: str) -> list[str]:
        return [language]

    def _check(self, response: requests.Response) -> None:
        if response.status_code in (401, 403):
            raise TranslatorError(
                f"libretranslate at {self.url} refused the request ({response.status_code}): check {API_KEY_SETTING}"
            )
        if response.status_code != 200:
            raise self._refused(response)

    def _pair_names(self) -> frozenset[str]:
        response = self._request("GET", "/languages")
        self._check(response)
        return frozenset(lang["code"] for lang in response.json() if ENGLISH in lang.get("targets", ()))

    def _translate(self, texts: list[str], pair: str) -> list[str]:
        body: dict[str, object] = {"q": texts, "source": pair, "target": ENGLISH, "format": "text"}
        if self._api_key:
            body["api_key"] = self._api_key
        response = self._request("POST", "/translate", json=body)
        self._check(response)
        translated = response.json()["translatedText"]
        return [translated] if isinstance(translated, str) else list(translated)
