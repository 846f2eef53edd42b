"""Data shipped with spaCy and spacy-lookups-data, loaded without the slow paths.

Importing some spaCy language packages compiles huge tokenizer-exception regexes (French
~12 s, Indonesian ~14 s), and spaCy's Lookups tables re-hash every key (~10x slower than a
dict). Punctuation rules and lookup tables are plain data, so they are read directly.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import spacy.lang
from spacy.util import load_language_data, registry


def spacy_lang_module(lang: str, name: str) -> ModuleType | None:
    """Execute spacy/lang/<lang>/<name>.py without importing spacy.lang.<lang> itself."""
    path = Path(spacy.lang.__file__).parent / lang / f"{name}.py"
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"spacy.lang.{lang}.{name}", path)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    module.__package__ = f"spacy.lang.{lang}"  # resolves its relative imports (char_classes)
    spec.loader.exec_module(module)
    return module


def stop_words(lang: str) -> frozenset[str]:
    """spaCy's lowercase stop words for a language; empty when spaCy has none."""
    module = spacy_lang_module(lang, "stop_words")
    return frozenset(w.lower() for w in getattr(module, "STOP_WORDS", ()))


def lookup_table(lang: str, name: str = "lemma_lookup") -> dict[str, Any]:
    """A spacy-lookups-data table as a plain dict; {} when the language has none."""
    tables = registry.lookups.get(lang) if lang in registry.lookups else {}
    return dict(load_language_data(tables[name])) if name in tables else {}
