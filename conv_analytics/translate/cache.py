"""Translations kept in a SQLite file, keyed by (text hash, pair), so a rerun never resends a text."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

CACHE_FILE = "translations.sqlite"
# SQLite's limit on host parameters is 32766 in current builds, 999 in old ones.
_QUERY_CHUNK = 900


def text_hash(text: str) -> str:
    """SHA-256 of the (already redacted) text: the cache never holds the text itself as key."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class TranslationCache:
    """English translations by (text hash, pair) in `<folder>/translations.sqlite`; in memory
    without a folder. Writes are committed per batch, so a failed run keeps what it translated."""

    def __init__(self, folder: str | Path | None = None) -> None:
        if folder is None:
            location = ":memory:"
        else:
            Path(folder).mkdir(parents=True, exist_ok=True)
            location = str(Path(folder) / CACHE_FILE)
        # Several processes (parallel runs) may share the file: WAL and a generous busy timeout.
        self.connection = sqlite3.connect(location, timeout=60)
        if folder is not None:
            self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS translations "
            "(hash TEXT NOT NULL, pair TEXT NOT NULL, text_en TEXT NOT NULL, PRIMARY KEY (hash, pair)) WITHOUT ROWID"
        )
        self.connection.commit()

    def get(self, hashes: Iterable[str], pair: str) -> dict[str, str]:
        """The cached translations among `hashes` for `pair`."""
        keys = list(hashes)
        found: dict[str, str] = {}
        for start in range(0, len(keys), _QUERY_CHUNK):
            chunk = keys[start : start + _QUERY_CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.connection.execute(
                f"SELECT hash, text_en FROM translations WHERE pair = ? AND hash IN ({marks})", [pair, *chunk]
            )
            found.update(rows)
        return found

    def put(self, translations: Mapping[str, str], pair: str) -> None:
        """Store {hash: English text} for `pair` and commit."""
        with self.connection:
            self.connection.executemany(
                "INSERT OR REPLACE INTO translations (hash, pair, text_en) VALUES (?, ?, ?)",
                [(h, pair, text) for h, text in translations.items()],
            )

    def __len__(self) -> int:
        return self.connection.execute("SELECT count(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        self.connection.close()
