"""Text processing for messages: PII redaction at ingest, then language, token and lemma enrichment."""
