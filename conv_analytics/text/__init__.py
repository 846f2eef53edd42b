"""Text processing for messages: PII redaction at ingest, then language/token/lemma enrichment."""

from conv_analytics.text.enrich import enrich_texts
from conv_analytics.text.language import detect_language
from conv_analytics.text.redact import RedactionOptions, pseudonymize, redact_record, redact_texts

__all__ = ["RedactionOptions", "detect_language", "enrich_texts", "pseudonymize", "redact_record", "redact_texts"]
