"""Text processing for messages: PII redaction at ingest, then language/token/lemma enrichment."""

from conv_analytics.text.enrich import enrich_texts
from conv_analytics.text.language import detect_language, detect_languages
from conv_analytics.text.redact import redact_texts

__all__ = ["detect_language", "detect_languages", "enrich_texts", "redact_texts"]
