"""Translation of chat messages into English: Apertium (pipe or apertium-apy) or LibreTranslate,
with a persistent cache. Pure: every setting comes in as a parameter."""

from conv_analytics.translate.cache import TranslationCache
from conv_analytics.translate.engines import (
    ApertiumPipe,
    ApertiumServer,
    LibreTranslate,
    Translator,
    TranslatorError,
)
from conv_analytics.translate.messages import (
    FAILED,
    NO_PAIR,
    NONE,
    STATUSES,
    TRANSLATED,
    MessageTranslator,
    Translations,
    default_kind,
    in_english,
    make_translator,
    translate_messages,
)

__all__ = [
    "FAILED",
    "NONE",
    "NO_PAIR",
    "STATUSES",
    "TRANSLATED",
    "ApertiumPipe",
    "ApertiumServer",
    "LibreTranslate",
    "MessageTranslator",
    "TranslationCache",
    "Translations",
    "Translator",
    "TranslatorError",
    "default_kind",
    "in_english",
    "make_translator",
    "translate_messages",
]
